# sysctl: each knob's live value, and our sysctl.d file.
wanted=""
# shellcheck disable=SC2154 # _resolved, _knob: set by knob_resolve, knob_read
while IFS='|' read -r knob key value; do
  if ! w=$(knob_resolve "$knob" "$key" "$value" 2>&1 && printf '%s' "$_resolved"); then drift "sysctl.$key" "${w#*error: }"; continue; fi
  wanted="$wanted$w
"
  knob_read "${w%% *}"
  live=$_knob
  [ "$live" = "${w#* }" ] || drift "sysctl.$key" "net.mptcp.${w%% *} is $live, the config says ${w#* }"
done <<EOF
$KNOBS
EOF
knob_conf "$wanted"
# shellcheck disable=SC2154 # _conf: set by knob_conf
printf '%s\n' "$_conf" | chk_file "sysctl" "$SYSCTL_CONF" 644
