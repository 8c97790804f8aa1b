# shellcheck shell=sh
# One interface brought in line with the config: its endpoints and its routing.

# iface_sync IFACE up|change|down [GATEWAY]: up re-creates the interface's endpoints (announcing
# them again, so peers join a path that came back) and its routing; change brings both in line,
# leaving what is already right alone; down removes both. Refused where mptcpd
# runs (lib/mptcpd.sh).
iface_sync() {
  mptcpd_refuse "endpoints"
  case "$2" in
    up) ep_set "$1" force; route_set "$1" "${3:-}" ;;
    change) ep_set "$1" ifneeded; route_sync "$1" "${3:-}" ;;
    down) ep_clear "$1"; route_down "$1" ;;
    *) die "unknown event $2 (up, change or down)" ;;
  esac
}

# hook_sync ARGS...: runs the entry point for an interface event, its stdout discarded: a hook
# runner's stdout may be unwritable (dhcpcd's, once journald's socket is gone: every write fails
# with EIO, which would end the entry point half-way). A failure is logged with the entry point's
# last error line (syslog through logger, and stderr) and never fails the caller: ifupdown aborts
# `ifup` when an if-up.d script fails (interfaces(5)), which would leave the interface down because of us.
hook_sync() {
  _hook_err=$("$MPTCP_PULUMI_SYNC" "$@" 2>&1 >/dev/null) && return 0
  _hook_rc=$?
  _hook_msg="$MPTCP_PULUMI_SYNC $* failed (exit $_hook_rc)${_hook_err:+: ${_hook_err##*
}}: the interface keeps going without its MPTCP endpoints or routing; run that command by hand to see why"
  if command -v logger >/dev/null 2>&1; then logger -t mptcp-pulumi -p daemon.warning -- "$_hook_msg" || true; fi
  printf 'mptcp-pulumi: %s\n' "$_hook_msg" >&2 || true
  return 0
}
