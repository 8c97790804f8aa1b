# dhclient-script sources this file (so: no exit, no set -e, and nothing left behind in its
# variables) with $reason, $interface, $new_ip_address, $old_ip_address and $new_routers.
mptcp_pulumi_router=${new_routers:-}
case "${reason:-}" in
  BOUND|RENEW|REBIND|REBOOT|BOUND6|RENEW6|REBIND6) "$MPTCP_PULUMI_SYNC" "${interface:-}" change "${mptcp_pulumi_router%% *}" || true ;;
  EXPIRE|FAIL|RELEASE|STOP|EXPIRE6|RELEASE6|STOP6) "$MPTCP_PULUMI_SYNC" "${interface:-}" down || true ;;
esac
unset mptcp_pulumi_router MPTCP_PULUMI_SYNC
