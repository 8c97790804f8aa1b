# shellcheck shell=sh
# ip mptcp endpoints. ENDPOINTS holds the config's endpoints, one per line:
#   NAME|INTERFACE|ADDRESS|ARGS
# NAME is how messages name the endpoint (endpoints[NAME]: "INTERFACE ADDRESS", or "INTERFACE"),
# ADDRESS may be empty (the interface's current address), ARGS are the other words of
# `ip mptcp endpoint add` (id, port, flags).
#
# Endpoints are read from the text of `ip mptcp endpoint show`, not from `ip -j`: the text of a
# line is exactly the argument list `ip mptcp endpoint add` takes, which is how the original table
# is saved and replayed, and a target needs no JSON parser (jq, python) for it. ep_normalize puts
# every line into one form, so no comparison depends on the order iproute2 prints flags in.

# ep_normalize: endpoint lines on stdin (`ip mptcp endpoint show` output, or `ip mptcp endpoint
# add` arguments) in one form: "ADDRESS id ID [port PORT] [dev IFACE] [FLAG...]", flags sorted,
# and the lines sorted as `sort` sorts them under LC_ALL=C (here, rather than by a `sort` process).
# Implicit endpoints are dropped: the kernel creates them for subflows' local addresses and owns
# them (they cannot be added; iproute2 < 6.5 prints them as "rawflags 10").
ep_normalize() {
  awk '
    NF == 0 { next }
    {
      id = ""; port = ""; dev = ""; nf = 0; implicit = 0
      for (i = 2; i <= NF; i++) {
        if ($i == "id") id = $(++i)
        else if ($i == "port") port = $(++i)
        else if ($i == "dev") dev = $(++i)
        else if ($i == "implicit" || $i == "rawflags") implicit = 1
        else {
          for (j = nf; j > 0 && flag[j] > $i; j--) flag[j + 1] = flag[j]
          flag[j + 1] = $i
          nf++
        }
      }
      if (implicit) next
      line = $1 " id " id
      if (port != "") line = line " port " port
      if (dev != "") line = line " dev " dev
      for (j = 1; j <= nf; j++) line = line " " flag[j]
      for (j = n; j > 0 && out[j] > line; j--) out[j + 1] = out[j]
      out[j + 1] = line
      n++
    }
    END { for (j = 1; j <= n; j++) print out[j] }'
}

# ep_table: the kernel's endpoint table, normalized and sorted.
ep_table() {
  _raw=$(ip mptcp endpoint show)
  ep_normalize <<EOF
$_raw
EOF
}

# ep_add_lines: adds every endpoint line on stdin (arguments of `ip mptcp endpoint add`). An add
# the kernel refuses because an implicit endpoint holds the line's address (-22) or id (-16) is
# retried once after ep_implicit_clear: the table is read only when an add fails.
ep_add_lines() {
  while read -r _line; do
    [ -n "$_line" ] || continue
    set -f
    # shellcheck disable=SC2086 # a line is the argument list, split on purpose (globbing is off)
    if ! _err=$(ip mptcp endpoint add $_line 2>&1); then
      # shellcheck disable=SC2086
      ep_implicit_clear $_line || die "ip mptcp endpoint add $_line failed: $_err"
      # shellcheck disable=SC2086
      ip mptcp endpoint add $_line || die "ip mptcp endpoint add $_line failed"
    fi
    set +f
  done
}

# ep_implicit_clear ADDRESS ARGS...: deletes the implicit endpoints (the kernel's, made for a
# subflow whose local address had no endpoint) that hold ADDRESS (unless ARGS have a port: the
# kernel tells such an endpoint apart by its port) or ARGS' id; fails when there is none. The
# kernel refuses an add with an id over an implicit endpoint of its address, and an add without
# one replaces it but keeps its id, so deleting it is how an endpoint with our id gets there.
# shellcheck disable=SC2154 # _w: set by word_after
ep_implicit_clear() {
  _ia=$1
  word_after port "$@"
  _iport=$_w
  word_after id "$@"
  _iid=$_w
  _t=$(ip mptcp endpoint show)
  _n=0
  while read -r _l; do
    # iproute2 >= 6.5 prints the flag as "implicit", older ones as "rawflags 10"
    case "$_l " in *" implicit "*|*" rawflags 10 "*) ;; *) continue ;; esac
    # shellcheck disable=SC2086 # split into words on purpose
    word_after id $_l
    if { [ -z "$_iport" ] && [ "${_l%% *}" = "$_ia" ]; } || [ "$_w" = "$_iid" ]; then
      ip mptcp endpoint delete id "$_w"
      say "replaced the kernel's implicit endpoint ${_l%% *} id $_w"
      _n=$((_n + 1))
    fi
  done <<EOF
$_t
EOF
  [ "$_n" -gt 0 ]
}

# addr_get IFACE -4|-6: sets _ifaddr to the interface's first global address that is usable: not
# tentative (DAD still running), dadfailed or deprecated (preferred lifetime over), and not an
# IPv4 link-local 169.254.0.0/16 one (dhcpcd's fallback when no lease comes, which it adds with
# scope global), so no endpoint or rule gets one; empty when it has none. One process (ip).
addr_get() {
  _o=$(ip -o "$2" addr show dev "$1" scope global -tentative -dadfailed -deprecated 2>/dev/null) || true
  _ifaddr=""
  # "N: IFACE inet ADDRESS/PREFIX ..." (inet6 for IPv6)
  while read -r _n _i _f _a _rest; do
    case $_a in "" | 169.254.*) continue ;; esac
    _ifaddr=${_a%%/*}
    break
  done <<EOF
$_o
EOF
}

# addr_of IFACE -4|-6: prints what addr_get finds.
addr_of() { addr_get "$1" "$2"; lines "$_ifaddr"; }

# has_addr IFACE: the interface has a global address.
has_addr() { addr_get "$1" -4; [ -n "$_ifaddr" ] || addr_get "$1" -6; [ -n "$_ifaddr" ]; }

# ep_ifaces: the host's endpoint interfaces, in config order.
ep_ifaces() {
  _seen=" "
  while IFS='|' read -r _index _iface _rest; do
    [ -n "$_iface" ] || continue
    case $_seen in *" $_iface "*) continue ;; esac
    _seen="$_seen$_iface "
    printf '%s\n' "$_iface"
  done <<EOF
$ENDPOINTS
EOF
}

# ep_check: every endpoint can be added now: its interface exists and, without an address in the
# config, has one. (With hooks, an interface that is absent or down gets its endpoints when it
# comes up, so this is not needed.)
ep_check() {
  while IFS='|' read -r _index _iface _addr _args; do
    [ -n "$_iface" ] || continue
    ip link show dev "$_iface" >/dev/null 2>&1 || die "endpoints[$_index].interface: interface $_iface does not exist on this host: fix the name (ip link lists them)"
    [ -n "$_addr" ] || has_addr "$_iface" || die "endpoints[$_index].address: interface $_iface has no global address now: bring it up with an address, or set address in the config"
  done <<EOF
$ENDPOINTS
EOF
}

# ep_want IFACE: the endpoint lines the config gives the interface now (not normalized). With
# hooks, an interface without a global address gets none: an announced address that cannot be
# reached makes the peer's join fail for good, and the hooks add them when it comes up.
ep_want() {
  while IFS='|' read -r _index _iface _addr _args; do
    [ "$_iface" = "$1" ] || continue
    if [ "$HOOKS" = 1 ] && ! has_addr "$_iface"; then continue; fi
    if [ -z "$_addr" ]; then addr_get "$_iface" -4; _addr=$_ifaddr; fi
    if [ -z "$_addr" ]; then addr_get "$_iface" -6; _addr=$_ifaddr; fi
    [ -n "$_addr" ] || die "endpoints[$_index].address: interface $_iface has no global address now: bring it up with an address, or set address in the config"
    echo "$_addr $_args dev $_iface"
  done <<EOF
$ENDPOINTS
EOF
}

# ep_have IFACE [IDS]: the kernel's endpoint lines (normalized) on the interface, and those holding
# one of IDS (a space-separated list) wherever they are.
ep_have() {
  _t=$(ep_table)
  while read -r _l; do
    case "$_l " in *" dev $1 "*) printf '%s\n' "$_l"; continue ;; esac
    # shellcheck disable=SC2086 # split into words on purpose
    word_after id $_l
    case " ${2-} " in *" $_w "*) printf '%s\n' "$_l" ;; esac
  done <<EOF
$_t
EOF
}

# ep_ids LINES: sets _ids to the ids of the endpoint lines LINES, space-separated.
# shellcheck disable=SC2154 # _w: set by word_after
ep_ids() {
  _ids=""
  while read -r _l; do
    [ -n "$_l" ] || continue
    # shellcheck disable=SC2086 # split into words on purpose
    word_after id $_l
    _ids="$_ids $_w"
  done <<EOF
$1
EOF
}

# ep_clear IFACE [HAVE]: removes the interface's endpoints and any endpoint holding one of its ids
# (the ids of the config's endpoints on it, too). HAVE: its endpoint lines, when the caller has
# just read them (ep_have).
# shellcheck disable=SC2154 # _w: set by word_after
ep_clear() {
  _lines=${2-$(ep_have "$1")}
  while IFS='|' read -r _index _iface _addr _args; do
    [ "$_iface" != "$1" ] || _lines="$_lines
$_args"
  done <<EOF
$ENDPOINTS
EOF
  _ids=" "
  while read -r _l; do
    # shellcheck disable=SC2086 # split into words on purpose
    word_after id $_l
    case $_ids in *" $_w "*) ;; *) _ids="$_ids$_w " ;; esac
  done <<EOF
$_lines
EOF
  for _id in $_ids; do
    ip mptcp endpoint delete id "$_id" 2>/dev/null || true
  done
}

# ep_set IFACE force|ifneeded: the interface's endpoints as the config gives them now. force
# deletes and re-adds them all (re-announcing them: a peer joins a path that came back);
# ifneeded changes only the endpoints that differ (ep_sync), an endpoint elsewhere that holds one
# of the wanted ids included.
ep_set() {
  _want=$(ep_want "$1")
  _want=$(ep_normalize <<EOF
$_want
EOF
)
  if [ "$2" = force ]; then
    ep_clear "$1"
    ep_add_lines <<EOF
$_want
EOF
  else
    ep_ids "$_want"
    ep_sync "$_want" "$(ep_have "$1" "$_ids")"
  fi
}

# ep_minus A B: the lines of A (text) that B (text) does not have.
ep_minus() {
  while read -r _l; do
    [ -n "$_l" ] || continue
    case "
$2
" in *"
$_l
"*) ;; *) printf '%s\n' "$_l" ;; esac
  done <<EOF
$1
EOF
}

# ep_parse WORD...: the words of a normalized endpoint line: sets _eid to its id, _ekey to the line
# without the backup and fullmesh flags (what `ip mptcp endpoint change` cannot change) and
# _eflags to the change arguments that give it its backup and fullmesh flags.
ep_parse() {
  _eid=""
  _ekey=$1
  _eb=nobackup
  _ef=nofullmesh
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      id | port | dev)
        [ "$1" != id ] || _eid=${2-}
        _ekey="$_ekey $1 ${2-}"
        shift
        ;;
      backup) _eb=backup ;;
      fullmesh) _ef=fullmesh ;;
      *) _ekey="$_ekey $1" ;;
    esac
    [ $# -eq 0 ] || shift
  done
  _eflags="$_eb $_ef"
}

# ep_reflag ID LINE: gives endpoint ID the backup and fullmesh flags of LINE (normalized) in place,
# so its subflows stay (the kernel sends MP_PRIO for a backup change); false when the kernel or ip
# cannot (set_flags: kernel >= 5.12 for backup; fullmesh not on a signal endpoint), or the table
# does not show LINE afterwards.
ep_reflag() {
  set -f
  # shellcheck disable=SC2086 # the line's words, split on purpose (globbing is off)
  ep_parse $2
  set +f
  # shellcheck disable=SC2086 # two words
  ip mptcp endpoint change id "$1" $_eflags 2>/dev/null || return 1
  _now=$(ip mptcp endpoint show id "$1" 2>/dev/null) || return 1
  _now=$(ep_normalize <<EOF
$_now
EOF
)
  [ "$_now" = "$2" ]
}

# ep_sync WANT HAVE: makes the endpoints HAVE (ep_table's lines) the lines WANT (normalized),
# touching only what differs. An endpoint in both is left alone (its id and subflows stay). A line
# of HAVE whose id a line of WANT has, differing only in backup or fullmesh, is re-flagged in place
# (ep_reflag); every other line of HAVE is deleted, then the other lines of WANT are added
# (ep_add_lines), so an id or address a deleted endpoint held is free. Sets _changed to the number
# of endpoints it touched.
ep_sync() {
  _new=$(ep_minus "$1" "$2")
  _gone=$(ep_minus "$2" "$1")
  _changed=0
  while read -r _g; do
    [ -n "$_g" ] || continue
    set -f
    # shellcheck disable=SC2086 # the line's words, split on purpose (globbing is off)
    ep_parse $_g
    set +f
    _gid=$_eid
    _gkey=$_ekey
    _rest=""
    _match=""
    while read -r _n; do
      [ -n "$_n" ] || continue
      if [ -z "$_match" ]; then
        set -f
        # shellcheck disable=SC2086
        ep_parse $_n
        set +f
        if [ "$_eid" = "$_gid" ] && [ "$_ekey" = "$_gkey" ]; then _match=$_n; continue; fi
      fi
      _rest="$_rest$_n
"
    done <<EOF
$_new
EOF
    _changed=$((_changed + 1))
    if [ -n "$_match" ] && ep_reflag "$_gid" "$_match"; then
      _new=$_rest
      say "endpoint re-flagged: $_match (was: $_g)"
      continue
    fi
    ip mptcp endpoint delete id "$_gid"
    say "endpoint removed: $_g"
  done <<EOF
$_gone
EOF
  while read -r _n; do
    [ -n "$_n" ] || continue
    _changed=$((_changed + 1))
    ep_add_lines <<EOF
$_n
EOF
    say "endpoint added: $_n"
  done <<EOF
$_new
EOF
}
