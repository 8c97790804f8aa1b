# Puts back the limits the host had before our first apply.
need_ip
state_lock
revert_begin limits "$STATE_DIR/limits/orig"
state_need "ip mptcp limits" "$STATE_DIR/limits/orig"
limits_restore
state_tidy "$STATE_DIR/limits"
say "limits restored"
