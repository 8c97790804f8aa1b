# limits: the ones the config sets, and no mptcpd setting them too.
mptcpd_found
[ -z "$_mptcpd" ] || drift "limits" "$_mptcpd"
limits_read
# shellcheck disable=SC2154 # sf and aa: set by limits_read
[ -z "$SUBFLOWS" ] || [ "$sf" = "$SUBFLOWS" ] || drift "limits.subflows" "ip mptcp limits: subflows is $sf, the config says $SUBFLOWS"
# shellcheck disable=SC2154
[ -z "$ADD_ADDR_ACCEPTED" ] || [ "$aa" = "$ADD_ADDR_ACCEPTED" ] || drift "limits.addAddrAccepted" "ip mptcp limits: add_addr_accepted is $aa, the config says $ADD_ADDR_ACCEPTED"
