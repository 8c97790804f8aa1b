# Puts back the endpoint table the host had before our first apply, changing only the endpoints
# that differ from it (ep_sync).
need_ip
state_lock
d=$STATE_DIR/endpoints
revert_begin endpoints "$d/orig"
state_need "endpoint table" "$d/orig"
orig=$(ep_normalize < "$d/orig")
have=$(ep_table)
[ "$have" = "$orig" ] || ep_sync "$orig" "$have"
rm -f "$d/orig"
state_tidy "$d"
say "endpoints restored"
