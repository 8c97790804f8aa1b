# NetworkManager runs dispatcher scripts with the interface and the action as $1 and $2.
# dhcp4-change/dhcp6-change are address changes (renewals). Not handled: connectivity-change
# (sent without an interface), pre-down (sent only to scripts in dispatcher.d/pre-down.d).
case "${2:-}" in
  up|reapply) exec "$MPTCP_PULUMI_SYNC" "$1" up "${IP4_GATEWAY:-}" ;;
  dhcp4-change|dhcp6-change) exec "$MPTCP_PULUMI_SYNC" "$1" change "${IP4_GATEWAY:-}" ;;
  down) exec "$MPTCP_PULUMI_SYNC" "$1" down ;;
esac
