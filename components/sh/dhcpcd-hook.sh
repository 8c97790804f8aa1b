# dhcpcd-run-hooks sources this file (so: no exit, no set -e, and nothing left behind in its
# variables) with $reason, $interface and, for IPv4 leases, $new_routers (TIMEOUT: dhcpcd fell
# back to an old lease it kept). dhcpcd runs its hooks
# after it has added or removed the lease's address, so a lost lease re-syncs the interface from
# what is left: the other family's address stays, and so does an address that Debian's
# `persistent` keeps when dhcpcd stops; IPV4LL comes when dhcpcd adds or drops a 169.254/16
# address (it drops it after BOUND, so the re-sync then sees the lease's address alone). A
# carrier loss or a removed interface takes everything.
# `nohook mptcp-pulumi` in dhcpcd.conf turns this hook off.
mptcp_pulumi_router=${new_routers:-}
case "${reason:-}" in
  BOUND|RENEW|REBIND|REBOOT|STATIC|TIMEOUT) hook_sync "${interface:-}" change "${mptcp_pulumi_router%% *}" ;;
  BOUND6|RENEW6|REBIND6|REBOOT6|DELEGATED6|ROUTERADVERT|IPV4LL|EXPIRE|NAK|RELEASE|STOP|EXPIRE6|RELEASE6|STOP6) hook_sync "${interface:-}" change ;;
  NOCARRIER|DEPARTED) hook_sync "${interface:-}" down ;;
esac
unset mptcp_pulumi_router MPTCP_PULUMI_SYNC _hook_rc _hook_msg
unset -f hook_sync
