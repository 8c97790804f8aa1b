# Brings interfaces in line with the config: their endpoints, their source routing, rp_filter.
# The ifupdown, NetworkManager, dhclient, dhcpcd and networkd-dispatcher hooks and the boot unit
# only call this.
# An event on one interface brings every endpoint interface in line, not only its own: a network
# manager acting on one interface (NetworkManager's reapply, networkd's reconfigure) may have
# deleted or re-flagged another's endpoints, rules or routes.
# Usage: mptcp-pulumi-sync IFACE up|change|down [GATEWAY]   an interface event (called by the hooks)
#        mptcp-pulumi-sync boot                            limits, then every interface that is up
#        mptcp-pulumi-sync apply                           routing of every interface (called by pulumi up)
need_ip
# First, before anything is applied (under the lock): a rollback armed before a reboot, whose job
# died with it, fires (lib/rollback.sh). This script may be the unconfirmed apply's own: the one
# the rollback put back (none after a first apply's) then handles the call, holding the lock.
case "${1:-}" in
  apply|""|-h|--help) ;;
  *)
    if [ -z "${MPTCP_PULUMI_RECOVERED:-}" ] && ! undoing && rb_pending; then
      state_lock
      rb_recover
      if [ -n "$_fired" ]; then
        export MPTCP_PULUMI_LOCKED=1 MPTCP_PULUMI_RECOVERED=1
        [ -x "$MPTCP_PULUMI_SYNC" ] || exit 0
        exec "$MPTCP_PULUMI_SYNC" "$@"
      fi
      # held: taking it again would let it go for a moment
      MPTCP_PULUMI_LOCKED=1
    fi
    ;;
esac
case "${1:-}" in
  boot)
    state_lock
    if [ -n "$SUBFLOWS$ADD_ADDR_ACCEPTED" ]; then limits_read; limits_apply; fi
    for i in $(ep_ifaces); do if has_addr "$i"; then iface_sync "$i" change; fi; done
    ;;
  apply)
    state_lock
    route_clear_unlisted
    for i in $(ep_ifaces); do if has_addr "$i"; then route_set "$i"; else route_down "$i"; fi; done
    ;;
  ""|-h|--help)
    awk '/^# Usage: / { u = 1 } u && !/^#/ { exit } u { sub(/^# ?/, ""); print }' "$0"
    ;;
  *)
    [ $# -ge 2 ] || die "usage: $0 IFACE up|change|down [GATEWAY]"
    ifaces=$(ep_ifaces)
    [ -n "$ifaces" ] || exit 0
    state_lock
    # the event's interface as the event says, then every other one as it is now
    for i in $ifaces; do [ "$i" != "$1" ] || iface_sync "$1" "$2" "${3:-}"; done
    for i in $ifaces; do [ "$i" = "$1" ] || iface_sync "$i" change; done
    ;;
esac
