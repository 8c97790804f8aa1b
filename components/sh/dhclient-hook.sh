# dhclient-script sources this file (so: no exit, no set -e, and nothing left behind in its
# variables) with $reason, $interface, $new_ip_address, $old_ip_address and $new_routers.
mptcp_pulumi_router=${new_routers:-}
case "${reason:-}" in
  BOUND|RENEW|REBIND|REBOOT|BOUND6|RENEW6|REBIND6) hook_sync "${interface:-}" change "${mptcp_pulumi_router%% *}" ;;
  EXPIRE|FAIL|RELEASE|STOP|EXPIRE6|RELEASE6|STOP6) hook_sync "${interface:-}" down ;;
esac
unset mptcp_pulumi_router MPTCP_PULUMI_SYNC _hook_rc _hook_msg
unset -f hook_sync
