# sysctl: each knob's live value, and our sysctl.d file.
wanted=""
while IFS='|' read -r knob key value; do
  if ! w=$(knob_resolve "$knob" "$key" "$value" 2>&1); then drift "$AT.sysctl.$key" "${w#*error: }"; continue; fi
  wanted="$wanted$w
"
  live=$(cat "/proc/sys/net/mptcp/${w%% *}")
  [ "$live" = "${w#* }" ] || drift "$AT.sysctl.$key" "net.mptcp.${w%% *} is $live, the config says ${w#* }"
done <<EOF
$KNOBS
EOF
knob_conf "$(printf '%s' "$wanted")" | chk_file "$AT.sysctl" "$SYSCTL_CONF" 644
