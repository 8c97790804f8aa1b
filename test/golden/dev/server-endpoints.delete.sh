sh -s <<'MPTCP_PULUMI_SCRIPT'
# mptcp-pulumi: host server, endpoints revert, generated from mptcp:hosts[0]
set -eu
umask 022
host=server
state=/var/lib/mptcp-pulumi
say() { printf 'mptcp-pulumi[%s]: %s\n' "$host" "$*"; }
die() { printf 'mptcp-pulumi[%s]: error: %s\n' "$host" "$*" >&2; exit 1; }
# keep FILE CMD...: saves CMD's output as FILE unless FILE exists (the original is captured once).
# (POSIX sh functions share variables: helpers use _-prefixed names that callers never use.)
keep() { _keep=$1; shift; [ -e "$_keep" ] && return 0; mkdir -p "${_keep%/*}"; "$@" > "$_keep.tmp"; mv "$_keep.tmp" "$_keep"; }
# tidy DIR: removes our state directory once it is empty (and then the lock, which lives as long).
tidy() { rmdir "$1" 2>/dev/null || true; if rmdir "$state" 2>/dev/null; then rm -f /run/mptcp-pulumi.lock; fi; }
# lock: serializes applies and interface hooks on this host (30 s at most).
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>>/run/mptcp-pulumi.lock
  flock -w 30 9 || die "another mptcp-pulumi apply or hook has held /run/mptcp-pulumi.lock for 30 s: retry, or find it with: fuser -v /run/mptcp-pulumi.lock"
}
command -v ip >/dev/null 2>&1 || die "ip (iproute2) is not installed"
ip mptcp limits show >/dev/null 2>&1 || die "ip mptcp does not work here: needs iproute2 >= 5.7 and a kernel with MPTCP (>= 5.6)"
d=$state/endpoints
# ---- this host's interfaces (from mptcp:hosts[0])
# endpoints: interface|address (empty: its current one)|the rest of `ip mptcp endpoint add`
ENDPOINTS='wlan0|10.22.18.33|id 1 signal dev wlan0'
# routing: interface|mode|table|priority|gateway
ROUTING=''
HOOKS=0
# addr_of IFACE -4|-6: the interface's first global address.
addr_of() { ip -o "$2" addr show dev "$1" scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }'; }
has_addr() { [ -n "$(addr_of "$1" -4)$(addr_of "$1" -6)" ]; }
# ifaces: the host's endpoint interfaces.
ifaces() { printf '%s\n' "$ENDPOINTS" | cut -d'|' -f1 | awk 'NF && !seen[$0]++'; }
# shown: the endpoint table as `ip mptcp endpoint show` prints it, trailing blanks dropped, sorted,
# less implicit endpoints: the kernel creates those for subflows' local addresses and owns them
# (they cannot be added; iproute2 < 6.5 prints them as "rawflags 10").
shown() { ip mptcp endpoint show | grep -v -e ' implicit' -e ' rawflags ' | sed 's/[[:space:]]*$//' | sort; }
# add_lines: adds every endpoint line on stdin; a line is exactly the arguments of `ip mptcp endpoint add`.
add_lines() {
  while read -r line; do
    [ -n "$line" ] || continue
    set -f
    # shellcheck disable=SC2086
    ip mptcp endpoint add $line || die "ip mptcp endpoint add $line failed"
    set +f
  done
}
# ep_want IFACE: the endpoint lines the config gives the interface now.
ep_want() {
  printf '%s\n' "$ENDPOINTS" | while IFS='|' read -r i a rest; do
    [ "$i" = "$1" ] || continue
    if [ "$HOOKS" = 1 ] && ! has_addr "$i"; then continue; fi
    [ -n "$a" ] || a=$(addr_of "$i" -4)
    [ -n "$a" ] || a=$(addr_of "$i" -6)
    [ -n "$a" ] || die "interface $i has no global address now: bring it up with an address, or set the endpoint's address in the config"
    echo "$a $rest"
  done
}
# ep_have IFACE: the endpoint lines the kernel has on the interface.
ep_have() { shown | awk -v i="$1" '$NF == i && $(NF - 1) == "dev"'; }
# ep_clear IFACE: removes the interface's endpoints and any endpoint holding one of its ids.
ep_clear() {
  for id in $( { ep_have "$1"; printf '%s\n' "$ENDPOINTS" | awk -F'|' -v i="$1" '$1 == i { print "x " $3 }'; } | awk '{ for (n = 1; n < NF; n++) if ($n == "id") print $(n + 1) }' | sort -u); do
    ip mptcp endpoint delete id "$id" 2>/dev/null || true
  done
}
# ep_set IFACE force|ifneeded: (re)creates the interface's endpoints; force re-announces them.
ep_set() {
  want=$(ep_want "$1" | sort)
  if [ "$2" != force ] && [ "$want" = "$(ep_have "$1" | sort)" ]; then return 0; fi
  ep_clear "$1"
  printf '%s\n' "$want" | add_lines
}
# route_entry IFACE: sets mode table prio gw from ROUTING; false when the interface has none.
route_entry() {
  entry=$(printf '%s\n' "$ROUTING" | awk -F'|' -v i="$1" '$1 == i')
  [ -n "$entry" ] || return 1
  IFS='|' read -r _ mode table prio gw <<EOF
$entry
EOF
}
# route_clear TABLE: removes every rule to TABLE and all of its routes, IPv4 and IPv6.
route_clear() {
  for fam in -4 -6; do
    while ip "$fam" rule del table "$1" 2>/dev/null; do :; done
    ip "$fam" route flush table "$1" 2>/dev/null || true
  done
}
# via FAMILY IFACE: the gateway of the main table's default route through the interface.
via() { ip "$1" route show default dev "$2" 2>/dev/null | awk '{ for (n = 1; n < NF; n++) if ($n == "via") { print $(n + 1); exit } }'; }
# route_set IFACE [GATEWAY]: the interface's source routing, from scratch (one rule per address).
route_set() {
  route_entry "$1" || return 0
  [ -n "$gw" ] || gw=${2:-}
  [ -n "$gw" ] || gw=$(via -4 "$1")
  if [ "$mode" = auto ]; then
    mode=none
    first=$(ip -4 route show default | awk '{ for (n = 1; n < NF; n++) if ($n == "dev") { print $(n + 1); exit } }')
    if [ -n "$gw" ] && [ "$first" != "$1" ]; then mode=source; fi
  fi
  route_clear "$table"
  [ "$mode" = source ] || return 0
  mkdir -p "$state/hooks"
  grep -qx "$table" "$state/hooks/tables" 2>/dev/null || echo "$table" >> "$state/hooks/tables"
  for fam in -4 -6; do
    a=$(addr_of "$1" "$fam")
    [ -n "$a" ] || continue
    for net in $(ip "$fam" route show dev "$1" proto kernel | awk '$1 !~ /^fe80/ { print $1 }'); do
      ip "$fam" route replace "$net" dev "$1" src "$a" table "$table"
    done
    if [ "$fam" = -4 ]; then g=$gw; else g=$(via -6 "$1"); fi
    [ -z "$g" ] || ip "$fam" route replace default via "$g" dev "$1" table "$table"
    ip "$fam" rule add from "$a" table "$table" priority "$prio"
  done
  rp_loose "$1"
}
route_down() { if route_entry "$1"; then route_clear "$table"; fi; }
# rp_loose IFACE: strict reverse-path filtering drops asymmetric subflow traffic: make it loose (2).
rp_loose() {
  _rp=/proc/sys/net/ipv4/conf/$1/rp_filter
  [ -e "$_rp" ] || return 0
  if [ "$(cat /proc/sys/net/ipv4/conf/all/rp_filter)" = 1 ] || [ "$(cat "$_rp")" = 1 ]; then
    keep "$state/hooks/rp_filter/$1" cat "$_rp"
    echo 2 > "$_rp"
  fi
}
# iface_sync IFACE up|change|down [GATEWAY]: brings one interface in line with the config.
iface_sync() {
  case "$2" in
    up) ep_set "$1" force; route_set "$1" "${3:-}" ;;
    change) ep_set "$1" ifneeded; route_set "$1" "${3:-}" ;;
    down) ep_clear "$1"; route_down "$1" ;;
    *) die "unknown event $2 (up, change or down)" ;;
  esac
}
lock
if [ -e "$d/orig" ]; then
  if ! shown | cmp -s - "$d/orig"; then
    ip mptcp endpoint flush
    add_lines < "$d/orig"
  fi
  rm -f "$d/orig"
fi
tidy "$d"
say "endpoints restored"
MPTCP_PULUMI_SCRIPT