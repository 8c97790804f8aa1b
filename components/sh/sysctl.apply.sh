# Sets each net.mptcp knob the config names (KNOBS: KNOB|CONFIG KEY|VALUE per line), live and in
# our own sysctl.d file, which boot applies; knobs managed before but no longer in the config go
# back to their originals. Everything is checked before anything changes.
knob_need_mptcp
d=$STATE_DIR/sysctl
# 1. check everything the config asks for; "KNOB VALUE" lines as this kernel takes them
wanted=$(printf '%s\n' "$KNOBS" | while IFS='|' read -r knob key value; do knob_resolve "$knob" "$key" "$value"; done)
state_lock
txn_begin sysctl "$AT.sysctl" content_revert
# 2. capture the originals once, then apply live
printf '%s\n' "$wanted" | while read -r knob value; do
  state_keep "$d/knobs/$knob" cat "/proc/sys/net/mptcp/$knob"
  knob_write "$knob" "$value"
done
# 3. knobs managed before but no longer in the config go back to their originals
for f in "$d"/knobs/*; do
  [ -e "$f" ] || continue
  knob=${f##*/}
  printf '%s\n' "$wanted" | grep -q "^$knob " && continue
  knob_restore "$knob"
  say "net.mptcp.$knob restored"
done
# 4. persist in our own sysctl.d file
[ -d /etc/sysctl.d ] || die "/etc/sysctl.d is missing: cannot persist sysctl settings on this host"
knob_conf "$wanted" | file_install "$d" "$SYSCTL_CONF" 644
printf '%s\n' "$wanted" | while read -r knob value; do echo "net.mptcp.$knob = $(cat "/proc/sys/net/mptcp/$knob")"; done
txn_commit sysctl
