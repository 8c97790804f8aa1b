# Puts back every net.mptcp knob we changed and what stood at our sysctl.d file's path before.
knob_need_mptcp
state_lock
d=$STATE_DIR/sysctl
revert_begin sysctl "$d/knobs"
# (a revert that resumes one cut short finds the knobs restored and forgotten already)
if [ -d "$d/knobs" ] || [ -z "$REVERT_RESUMED" ]; then
  state_need "net.mptcp settings" "$d/knobs"
  for f in "$d"/knobs/*; do
    [ -e "$f" ] || continue
    knob_restore "${f##*/}"
  done
  rmdir "$d/knobs"
fi
file_restore_all "$d"
state_tidy "$d"
say "sysctl restored"
