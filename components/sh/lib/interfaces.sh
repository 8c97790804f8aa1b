# shellcheck shell=sh
# One interface brought in line with the config: its endpoints and its routing.

# iface_sync IFACE up|change|down [GATEWAY]: up re-creates the interface's endpoints (announcing
# them again, so peers join a path that came back) and its routing; change does the same but
# leaves endpoints alone when they are already right; down removes both.
iface_sync() {
  case "$2" in
    up) ep_set "$1" force; route_set "$1" "${3:-}" ;;
    change) ep_set "$1" ifneeded; route_set "$1" "${3:-}" ;;
    down) ep_clear "$1"; route_down "$1" ;;
    *) die "unknown event $2 (up, change or down)" ;;
  esac
}
