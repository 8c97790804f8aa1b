# shellcheck shell=sh
# mptcpd, the Multipath TCP daemon, sets ip mptcp limits and adds endpoints (link-local ones too)
# itself after interface events, so on a host that runs it, limits and endpoints set by
# mptcp-pulumi would be undone at the next event: the two refuse to share them. Its unit is
# mptcp.service (Debian's package, upstream's unit file), mptcpd.service in some distributions.

# mptcpd_found: sets _mptcpd to what shows that this host runs mptcpd and the way out (empty when
# it does not): its unit enabled (a link in a .wants directory of /etc/systemd/system, the unit
# not masked) or an mptcpd process in this network namespace (an active unit has one). Starts no
# process; looks once per run.
mptcpd_found() {
  [ -z "${_mptcpd_seen:-}" ] || return 0
  _mptcpd_seen=1
  _mptcpd=""
  _unit=mptcp.service
  for _u in mptcp.service mptcpd.service; do
    # shellcheck disable=SC3013 # -ef: see state_lock
    if [ -L "/etc/systemd/system/$_u" ] && [ "/etc/systemd/system/$_u" -ef /dev/null ]; then continue; fi
    for _l in /etc/systemd/system/*.wants/"$_u"; do
      if [ -L "$_l" ] || [ -e "$_l" ]; then _mptcpd="$_u is enabled"; _unit=$_u; break 2; fi
    done
  done
  for _p in /proc/[0-9]*/comm; do
    read -r _c 2>/dev/null < "$_p" || continue
    [ "$_c" = mptcpd ] || continue
    _p=${_p%/comm}
    # one in another network namespace (a container's) manages that one; one whose namespace
    # this user may not see counts
    # shellcheck disable=SC3013
    if [ -e "$_p/ns/net" ] && [ ! "$_p/ns/net" -ef /proc/self/ns/net ]; then continue; fi
    _mptcpd="${_mptcpd:+$_mptcpd, }mptcpd runs (pid ${_p#/proc/})"
    break
  done
  [ -n "$_mptcpd" ] || return 0
  _mptcpd="mptcpd manages MPTCP on this host ($_mptcpd): it sets ip mptcp limits and endpoints itself after interface events and would undo these. Either stop it for good (systemctl disable --now $_unit) and run pulumi up again, or leave limits and endpoints out of this host's config and let mptcpd own them"
}

# mptcpd_refuse PATH: fails, naming PATH (the config's limits or endpoints), when mptcpd_found
# finds mptcpd; callers run it before they change anything.
mptcpd_refuse() {
  mptcpd_found
  [ -z "$_mptcpd" ] || die "$1: nothing was changed: $_mptcpd"
}
