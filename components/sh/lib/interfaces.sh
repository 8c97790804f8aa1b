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

# hook_sync ARGS...: runs the entry point for an interface event with its output captured, then
# passes that on to the hook runner's output (from a subshell, ignoring errors: dhcpcd's may be
# unwritable, EIO, which ended the entry point half-way when it wrote there itself) and to syslog.
# A failure is logged with the entry point's last line (logger, and stderr) and never fails the
# caller: ifupdown aborts `ifup` when an if-up.d script fails (interfaces(5)), which would leave
# the interface down because of us.
hook_sync() {
  _hook_rc=0
  _hook_out=$("$MPTCP_PULUMI_SYNC" "$@" 2>&1) || _hook_rc=$?
  if [ -n "$_hook_out" ]; then
    (printf '%s\n' "$_hook_out") 2>/dev/null || true
    if command -v logger >/dev/null 2>&1; then (printf '%s\n' "$_hook_out" | logger -t mptcp-pulumi -p daemon.info) 2>/dev/null || true; fi
  fi
  [ "$_hook_rc" -ne 0 ] || return 0
  _hook_msg="$MPTCP_PULUMI_SYNC $* failed (exit $_hook_rc)${_hook_out:+: ${_hook_out##*
}}: the interface keeps going without its MPTCP endpoints or routing; run that command by hand to see why"
  if command -v logger >/dev/null 2>&1; then logger -t mptcp-pulumi -p daemon.warning -- "$_hook_msg" || true; fi
  (printf 'mptcp-pulumi: %s\n' "$_hook_msg" >&2) 2>/dev/null || true
  return 0
}
