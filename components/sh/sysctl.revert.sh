# Puts back every net.mptcp knob we changed and what stood at our sysctl.d file's path before.
knob_need_mptcp
state_lock
d=$STATE_DIR/sysctl
if [ -d "$d/knobs" ]; then
  for f in "$d"/knobs/*; do
    [ -e "$f" ] || continue
    knob_restore "${f##*/}"
  done
  rmdir "$d/knobs"
fi
file_restore_all "$d"
state_tidy "$d"
say "sysctl restored"
