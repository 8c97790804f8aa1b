# Puts back the endpoint table the host had before our first apply.
need_ip
state_lock
d=$STATE_DIR/endpoints
rolled=$(rb_rolled_back endpoints)
rb_forget endpoints
# the rollback of a first apply was this revert: nothing is left to restore
if [ -n "$rolled" ] && [ ! -e "$d/orig" ]; then
  state_tidy "$d"
  say "endpoints: already restored by the rollback"
  exit 0
fi
state_need "endpoint table" "$d/orig"
if ! ep_table | cmp -s - "$d/orig"; then
  ip mptcp endpoint flush
  ep_add_lines < "$d/orig"
fi
rm -f "$d/orig"
state_tidy "$d"
say "endpoints restored"
