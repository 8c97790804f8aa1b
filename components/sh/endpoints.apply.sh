# Makes the config's endpoints (ENDPOINTS) the host's endpoint table, saving the original table
# first. Only the endpoints that differ are added, deleted or re-flagged (ep_sync), so an endpoint
# that stays keeps its id and its subflows, and a re-apply touches nothing; a change arms a
# rollback first (lib/rollback.sh), which the confirm command disarms.
need_ip
mptcpd_refuse "endpoints"
[ "$HOOKS" = 1 ] || ep_check
state_lock
txn_begin endpoints "endpoints" content_revert
d=$STATE_DIR/endpoints
# 1. the wanted table (an address left out in the config: the interface's current one)
# (two steps: in a pipeline, ep_want dying for an interface without an address would go unseen)
want=$(for i in $(ep_ifaces); do ep_want "$i"; done)
want=$(ep_normalize <<EOF
$want
EOF
)
# 2. capture the original table once, then change what differs
have=$(ep_table)
state_keep "$d/orig" lines "$have"
if [ "$have" = "$want" ]; then
  say "endpoints unchanged"
else
  rb_arm endpoints content_revert
  ep_sync "$want" "$have"
  # shellcheck disable=SC2154 # _changed: set by ep_sync
  say "endpoints set ($_changed changed)"
fi
ip mptcp endpoint show
now=$(ep_table)
while read -r l; do [ -z "$l" ] || report endpoint "$l"; done <<EOF
$now
EOF
rb_settle endpoints
txn_commit endpoints
