# Puts back the endpoint table the host had before our first apply.
need_ip
state_lock
d=$STATE_DIR/endpoints
revert_begin endpoints "$d/orig"
state_need "endpoint table" "$d/orig"
if ! ep_table | cmp -s - "$d/orig"; then
  ip mptcp endpoint flush
  ep_add_lines < "$d/orig"
fi
rm -f "$d/orig"
state_tidy "$d"
say "endpoints restored"
