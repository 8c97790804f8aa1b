# shellcheck shell=sh
# Per-interface source routing and reverse-path filtering. ROUTING holds one line per endpoint
# interface:
#   INTERFACE|MODE|TABLE|PRIORITY|GATEWAY
# MODE is auto, source or none; GATEWAY may be empty. Tables are numeric (no rt_tables names).
# Every table we filled and the config still names is listed in STATE_DIR/hooks/tables, every rp_filter we changed is
# saved in STATE_DIR/hooks/rp_filter/IFACE: revert reads both back.

# route_entry IFACE: sets rt_mode, rt_table, rt_prio and rt_gw from ROUTING; false when the
# interface has no entry.
route_entry() {
  while IFS='|' read -r _ri rt_mode rt_table rt_prio rt_gw; do
    [ "$_ri" != "$1" ] || return 0
  done <<EOF
$ROUTING
EOF
  return 1
}

# route_listed TABLE: ROUTING names TABLE.
route_listed() {
  while IFS='|' read -r _li _lm _lt _lrest; do
    [ "$_lt" != "$1" ] || return 0
  done <<EOF
$ROUTING
EOF
  return 1
}

# route_clear TABLE: removes every rule to TABLE and all of its routes, IPv4 and IPv6.
route_clear() { route_clear_fam -4 "$1"; route_clear_fam -6 "$1"; }

# route_clear_fam -4|-6 TABLE: removes every rule to TABLE and all of its routes, of one family.
route_clear_fam() {
  while ip "$1" rule del table "$2" 2>/dev/null; do :; done
  ip "$1" route flush table "$2" 2>/dev/null || true
}

# route_record TABLE: lists TABLE among the tables we filled.
route_record() {
  state_dir "$STATE_DIR/hooks"
  if [ -e "$STATE_DIR/hooks/tables" ]; then
    while read -r _rt; do [ "$_rt" != "$1" ] || return 0; done < "$STATE_DIR/hooks/tables"
  fi
  state_write "$STATE_DIR/hooks/tables" route_tables_and "$1"
}

# route_tables_and TABLE: prints the tables we filled, then TABLE.
route_tables_and() {
  if [ -e "$STATE_DIR/hooks/tables" ]; then
    while read -r _rt; do echo "$_rt"; done < "$STATE_DIR/hooks/tables"
  fi
  echo "$1"
}

# route_clear_unlisted: clears every table we filled that ROUTING no longer names, and forgets it.
route_clear_unlisted() {
  _list=$STATE_DIR/hooks/tables
  [ -e "$_list" ] || return 0
  _keep=""
  while read -r _t; do
    if route_listed "$_t"; then _keep="$_keep$_t
"; else route_clear "$_t"; fi
  done < "$_list"
  if [ -n "$_keep" ]; then state_write "$_list" printf '%s' "$_keep"; else rm -f "$_list"; fi
}

# route_clear_recorded: clears every table we filled, and forgets the list.
route_clear_recorded() {
  [ -e "$STATE_DIR/hooks/tables" ] || return 0
  while read -r _t; do route_clear "$_t"; done < "$STATE_DIR/hooks/tables"
  rm -f "$STATE_DIR/hooks/tables"
}

# route_via -4|-6 IFACE: sets _w to the gateway of the main table's default route through the
# interface (empty when none).
route_via() {
  _o=$(ip "$1" route show default dev "$2" 2>/dev/null) || true
  # shellcheck disable=SC2086 # split into words on purpose
  word_after via $_o
}

# route_table_via TABLE IFACE: sets _w to the gateway of TABLE's IPv4 default route, where IFACE
# still reaches it on its link (an interface re-addressed into another subnet does not): empty
# otherwise.
route_table_via() {
  _o=$(ip -4 route show table "$1" default 2>/dev/null) || true
  # shellcheck disable=SC2086 # split into words on purpose
  word_after via $_o
  [ -n "$_w" ] || return 0
  _o=$(ip -4 route get "$_w" oif "$2" 2>/dev/null) || { _w=""; return 0; }
  case " $_o " in *" via "*) _w="" ;; esac
}

# route_first_dev: sets _w to the interface of the main table's first IPv4 default route.
route_first_dev() {
  _o=$(ip -4 route show default)
  # shellcheck disable=SC2086 # split into words on purpose
  word_after dev $_o
}

# route_resolve IFACE [GATEWAY]: route_entry, with the gateway and an auto mode decided: source
# when the interface has a gateway that is not the main table's first default route, else none.
# The gateway: the config's, else GATEWAY (a hook's hint), else the main table's default route
# through the interface, else the one its own table holds (set from an earlier hint: an event on
# another interface, which brings no hint for this one, must not lose it).
# shellcheck disable=SC2154 # _w: set by word_after
route_resolve() {
  route_entry "$1" || return 1
  [ -n "$rt_gw" ] || rt_gw=${2:-}
  if [ -z "$rt_gw" ]; then route_via -4 "$1"; rt_gw=$_w; fi
  if [ -z "$rt_gw" ]; then route_table_via "$rt_table" "$1"; rt_gw=$_w; fi
  if [ "$rt_mode" = auto ]; then
    rt_mode=none
    if [ -n "$rt_gw" ]; then
      route_first_dev
      [ "$_w" = "$1" ] || rt_mode=source
    fi
  fi
}

# route_onlink -4|-6 IFACE: sets _nets to the destinations the main table reaches on the
# interface's link without a gateway, whoever added the route: the kernel's prefix routes, the
# `proto dhcp` and `proto ra` ones with which dhcpcd and NetworkManager replace them, an admin's
# static on-link routes. Traffic from the interface's address to any of them must stay on the link,
# not go to the gateway. Not the default route, routes through a gateway, fe80::/64, or routes of
# special types. One process (ip).
route_onlink() {
  _nets=""
  _o=$(ip "$1" route show table main dev "$2" 2>/dev/null) || true
  while read -r _net _rest; do
    case $_net in "" | default | fe80:* | unicast | broadcast | local | multicast | anycast | unreachable | blackhole | prohibit | throw | nat) continue ;; esac
    case " $_rest " in *" via "*) continue ;; esac
    _nets="$_nets $_net"
  done <<EOF
$_o
EOF
}

# route_set IFACE [GATEWAY]: the interface's source routing: for its first global address of each
# family (the one its endpoint uses), a rule to its table, which holds the interface's on-link
# routes (route_onlink) and a default route through the gateway; nothing else goes to or stays in
# the table. Only what differs is changed (route_table_sync, route_rule_sync): a rule or route that
# is right is never deleted and re-added, so traffic from the address always finds it. GATEWAY is
# a hint from a hook (DHCP, ifupdown); the config's gateway wins over it, and the main table's
# route over none.
# shellcheck disable=SC2154 # _w, _ifaddr: set by word_after, addr_get
route_set() {
  route_resolve "$1" "${2:-}" || return 0
  if [ "$rt_mode" != source ]; then route_clear "$rt_table"; return 0; fi
  route_record "$rt_table"
  for _fam in -4 -6; do
    addr_get "$1" "$_fam"
    _a=$_ifaddr
    if [ -z "$_a" ]; then route_clear_fam "$_fam" "$rt_table"; continue; fi
    route_onlink "$_fam" "$1"
    if [ "$_fam" = -4 ]; then _g=$rt_gw; else route_via -6 "$1"; _g=$_w; fi
    route_table_sync "$_fam" "$1" "$_a" "$_g"
    route_rule_sync "$_fam" "$_a"
  done
  rp_loose "$1"
}

# route_table_sync -4|-6 IFACE ADDRESS GATEWAY: makes rt_table hold a route to each of _nets
# (route_onlink's) on IFACE with source ADDRESS, and a default route via GATEWAY (none when it is
# empty): a route already so is left alone, any other route in the table is deleted, a missing
# one added. One ip reads the table.
# shellcheck disable=SC2154 # rt_table: set by route_resolve
route_table_sync() {
  _o=$(ip "$1" route show table "$rt_table" 2>/dev/null) || true
  _ok=" "
  while read -r _dst _rest; do
    [ -n "$_dst" ] || continue
    if [ "$_dst" = default ]; then
      case " $_rest " in " via $4 dev $2 "*) if [ -n "$4" ]; then _ok="${_ok}default "; continue; fi ;; esac
    else
      case " $_nets " in *" $_dst "*)
        case " $_rest " in *" dev $2 "*) case " $_rest " in *" src $3 "*) _ok="$_ok$_dst "; continue ;; esac ;; esac ;;
      esac
    fi
    set -f
    # shellcheck disable=SC2086 # the route as ip prints it, split on purpose (globbing is off)
    ip "$1" route del "$_dst" $_rest table "$rt_table" 2>/dev/null || ip "$1" route del "$_dst" table "$rt_table"
    set +f
  done <<EOF
$_o
EOF
  for _net in $_nets; do
    case $_ok in *" $_net "*) ;; *) ip "$1" route replace "$_net" dev "$2" src "$3" table "$rt_table" ;; esac
  done
  case $_ok in *" default "*) ;; *) [ -z "$4" ] || ip "$1" route replace default via "$4" dev "$2" table "$rt_table" ;; esac
}

# route_rule_sync -4|-6 ADDRESS: makes "from ADDRESS lookup rt_table" at priority rt_prio the only
# rule to rt_table: a rule already so is left alone, any other rule to the table deleted.
# shellcheck disable=SC2154 # rt_table, rt_prio: set by route_resolve
route_rule_sync() {
  _rules=$(ip "$1" rule show)
  _ours=""
  while IFS= read -r _r; do
    case $_r in *" lookup $rt_table") ;; *) continue ;; esac
    # "PRIORITY:<blanks>SELECTOR lookup TABLE"
    _p=${_r%%:*}
    _rest=${_r#*:}
    while :; do case $_rest in [[:space:]]*) _rest=${_rest#?} ;; *) break ;; esac; done
    if [ -z "$_ours" ] && [ "$_p" = "$rt_prio" ] && [ "$_rest" = "from $2 lookup $rt_table" ]; then
      _ours=1
      continue
    fi
    set -f
    # shellcheck disable=SC2086 # the rule as ip prints it, split on purpose (globbing is off)
    ip "$1" rule del priority "$_p" $_rest 2>/dev/null || ip "$1" rule del priority "$_p" table "$rt_table"
    set +f
  done <<EOF
$_rules
EOF
  [ -n "$_ours" ] || ip "$1" rule add from "$2" table "$rt_table" priority "$rt_prio"
}

# route_sync IFACE [GATEWAY]: route_set, only where the interface's rules, table or rp_filter are
# not as route_set leaves them (chk_routing finds a difference): a renewal, or an event on another
# interface, reads the state once and changes nothing when it is right.
route_sync() { if [ -n "$(chk_routing "$1" "${2:-}")" ]; then route_set "$1" "${2:-}"; fi; }

# route_down IFACE: removes the interface's rules and its table's routes.
route_down() { if route_entry "$1"; then route_clear "$rt_table"; fi; }

# rp_loose IFACE: strict reverse-path filtering (1, on the interface or on all) drops the
# asymmetric traffic of subflows: makes the interface loose (2), saving its original value once.
rp_loose() {
  _rp=/proc/sys/net/ipv4/conf/$1/rp_filter
  [ -e "$_rp" ] || return 0
  if [ "$(cat /proc/sys/net/ipv4/conf/all/rp_filter)" = 1 ] || [ "$(cat "$_rp")" = 1 ]; then
    state_keep "$STATE_DIR/hooks/rp_filter/$1" cat "$_rp"
    echo 2 > "$_rp"
  fi
}

# rp_restore_all: puts back every rp_filter value rp_loose saved, and forgets them.
rp_restore_all() {
  [ -d "$STATE_DIR/hooks/rp_filter" ] || return 0
  for _f in "$STATE_DIR"/hooks/rp_filter/*; do
    [ -e "$_f" ] || continue
    _rp=/proc/sys/net/ipv4/conf/${_f##*/}/rp_filter
    if [ -e "$_rp" ]; then cat "$_f" > "$_rp"; fi
    rm -f "$_f"
  done
  rmdir "$STATE_DIR/hooks/rp_filter"
}
