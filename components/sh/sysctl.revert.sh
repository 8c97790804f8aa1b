# Puts back every net.mptcp knob we changed and what stood at our sysctl.d file's path before.
knob_need_mptcp
state_lock
d=$STATE_DIR/sysctl
revert_begin sysctl "$d/knobs"
state_need "net.mptcp settings" "$d/knobs"
for f in "$d"/knobs/*; do
  [ -e "$f" ] || continue
  knob_restore "${f##*/}"
done
rmdir "$d/knobs"
file_restore_all "$d"
state_tidy "$d"
say "sysctl restored"
