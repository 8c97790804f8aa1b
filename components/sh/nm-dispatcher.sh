# NetworkManager runs dispatcher scripts with the interface and the action as $1 and $2.
# dhcp4-change/dhcp6-change are address changes (renewals). Not handled: connectivity-change
# (sent without an interface), pre-down (sent only to scripts in dispatcher.d/pre-down.d).
case "${2:-}" in
  up|reapply) hook_sync "$1" up "${IP4_GATEWAY:-}" ;;
  dhcp4-change|dhcp6-change) hook_sync "$1" change "${IP4_GATEWAY:-}" ;;
  down) hook_sync "$1" down ;;
esac
