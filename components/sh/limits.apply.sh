# Sets ip mptcp limits to the config's SUBFLOWS and ADD_ADDR_ACCEPTED (a limit left unset is held
# at the host's original), saving the original first.
need_ip
mptcpd_refuse "limits"
state_lock
txn_begin limits "limits" content_revert
limits_save
limits_apply
now=$(ip mptcp limits show)
lines "$now"
# shellcheck disable=SC2086 # "add_addr_accepted N subflows N": words on purpose
report limits $now
txn_commit limits
