# shellcheck shell=sh
# Drift: the host's live state compared with the config, changing nothing. Each difference is one
# line "KEY|WHAT DIFFERS" on stdout: KEY names what differs in the host entry, as in limits.subflows
# or services[iperf3.service] (empty: the entry as a whole; npm run check shows its config path).

# drift PATH MESSAGE...: reports one difference.
drift() {
  _at=$1
  shift
  printf '%s|%s\n' "$_at" "$*"
}

# chk_lines PATH WHAT WANT HAVE: the lines of WANT missing from HAVE and those HAVE has besides
# (both sorted), each as a difference. One awk (the texts through its environment, which, unlike
# -v, keeps backslashes as they are) instead of a grep per line.
chk_lines() {
  _AT=$1 _WHAT=$2 _WANT=$3 _HAVE=$4 awk 'BEGIN {
    nw = split(ENVIRON["_WANT"], w, "\n"); nh = split(ENVIRON["_HAVE"], h, "\n")
    for (i = 1; i <= nw; i++) inw[w[i]] = 1
    for (i = 1; i <= nh; i++) inh[h[i]] = 1
    for (i = 1; i <= nw; i++) if (w[i] != "" && !(w[i] in inh)) printf "%s|%s missing: %s\n", ENVIRON["_AT"], ENVIRON["_WHAT"], w[i]
    for (i = 1; i <= nh; i++) if (h[i] != "" && !(h[i] in inw)) printf "%s|%s not in the config: %s\n", ENVIRON["_AT"], ENVIRON["_WHAT"], h[i]
  }'
}

# chk_file PATH FILE MODE: FILE has the content on stdin and MODE.
chk_file() {
  if [ ! -e "$2" ]; then
    drift "$1" "$2 is missing"
  elif ! cmp -s - "$2"; then
    drift "$1" "$2 differs from what mptcp-pulumi writes"
  elif [ "$(stat -c %a "$2")" != "$3" ]; then
    drift "$1" "$2 has mode $(stat -c %a "$2"), not $3"
  fi
}

# chk_routing IFACE [GATEWAY]: the interface's rules and table as route_set leaves them (GATEWAY: a
# hook's hint, as route_set takes it). Each family's rules
# and table are read once and matched in the shell.
# shellcheck disable=SC2154 # rt_mode, rt_table, rt_prio, rt_gw: set by route_resolve
chk_routing() {
  route_resolve "$1" "${2:-}" || return 0
  _at="routing"
  for _fam in -4 -6; do
    addr_get "$1" "$_fam"
    _a=$_ifaddr
    _rules=$(ip "$_fam" rule show)
    _n=0
    _ours=""
    while IFS= read -r _r; do
      case $_r in *" lookup $rt_table") _n=$((_n + 1)) ;; *) continue ;; esac
      # "PRIORITY:<blanks>from ADDRESS lookup TABLE"
      case $_r in "$rt_prio:"*) _rest=${_r#"$rt_prio:"} ;; *) continue ;; esac
      while :; do case $_rest in [[:space:]]*) _rest=${_rest#?} ;; *) break ;; esac; done
      [ "$_rest" != "from $_a lookup $rt_table" ] || _ours=1
    done <<EOF
$_rules
EOF
    if [ "$rt_mode" != source ] || [ -z "$_a" ]; then
      [ "$_n" = 0 ] || drift "$_at" "$1: $_n ip $_fam rule(s) to table $rt_table, none expected (mode $rt_mode)"
      continue
    fi
    [ -n "$_ours" ] || drift "$_at" "$1: no ip $_fam rule \"from $_a lookup $rt_table\" at priority $rt_prio"
    [ "$_n" = 1 ] || drift "$_at" "$1: $_n ip $_fam rules to table $rt_table, 1 expected"
    # the table: the main table's on-link routes of the interface (route_onlink), the default route
    _table=$(ip "$_fam" route show table "$rt_table" 2>/dev/null) || true
    route_onlink "$_fam" "$1"
    for _net in $_nets; do
      case "
$_table" in *"
$_net "*) ;; *) drift "$_at" "$1: table $rt_table has no route to $_net (the main table reaches it on $1)" ;; esac
    done
    if [ "$_fam" = -4 ] && [ -n "$rt_gw" ]; then
      case "
$_table" in *"
default via $rt_gw "*) ;; *) drift "$_at" "$1: table $rt_table has no default route via $rt_gw" ;; esac
    fi
  done
  _rp=$(cat "/proc/sys/net/ipv4/conf/$1/rp_filter" 2>/dev/null || echo 0)
  _all=$(cat /proc/sys/net/ipv4/conf/all/rp_filter)
  if [ "$rt_mode" = source ] && [ "$_all" -le 1 ] && { [ "$_rp" = 1 ] || [ "$_all$_rp" = 10 ]; }; then
    drift "$_at" "$1: rp_filter is strict: subflows arriving asymmetrically are dropped"
  fi
}

# files_differ: sets _differ to the hook files (FILES) that are not as the hooks apply writes them,
# a line "PATH|WHAT" each: missing, another content (by its sha256), or another mode or not a
# regular file. One sha256sum and one stat for all of them.
# shellcheck disable=SC2034 # _fn: a field of FILES this does not use
files_differ() {
  _differ=""
  _paths=""
  while IFS='|' read -r _path _mode _only _fn _sum; do
    [ -z "$_only" ] || [ -d "$_only" ] || continue
    if [ -e "$_path" ] || [ -L "$_path" ]; then _paths="$_paths $_path "; else _differ="$_differ$_path|is missing
"; fi
  done <<EOF
$FILES
EOF
  [ -n "$_paths" ] || return 0
  set -f
  # shellcheck disable=SC2086 # our own fixed paths, split into arguments on purpose (globbing is off)
  _sums=$(sha256sum -- $_paths 2>/dev/null || true)
  # shellcheck disable=SC2086
  _stats=$(stat -c '%a|%F|%n' -- $_paths)
  set +f
  while IFS='|' read -r _path _mode _only _fn _sum; do
    case $_paths in *" $_path "*) ;; *) continue ;; esac
    case "
$_sums
" in
      *"
$_sum  $_path
"*) ;;
      *) _differ="$_differ$_path|differs from what mptcp-pulumi writes
"; continue ;;
    esac
    case "
$_stats
" in *"
$_mode|regular file|$_path
"*) continue ;; esac
    while IFS='|' read -r _have _type _p; do [ "$_p" != "$_path" ] || break; done <<EOF
$_stats
EOF
    _differ="$_differ$_path|has mode $_have, not $_mode
"
  done <<EOF
$FILES
EOF
}

# in_differ PATH: whether files_differ found PATH (in _differ).
in_differ() {
  case "
$_differ" in *"
$1|"*) return 0 ;; esac
  return 1
}

# chk_hooks: the files the hooks apply installs (FILES), the boot unit's enablement, and each
# endpoint interface's routing.
chk_hooks() {
  files_differ
  while IFS='|' read -r _p _what; do
    [ -z "$_p" ] || drift "hooks" "$_p $_what"
  done <<EOF
$_differ
EOF
  chk_hooks_in_place
}

# chk_hooks_in_place: the boot unit's enablement and each endpoint interface's routing.
chk_hooks_in_place() {
  if [ -d /etc/systemd/system ] && [ "$(readlink "/etc/systemd/system/multi-user.target.wants/$UNIT_NAME" 2>/dev/null)" != "../$UNIT_NAME" ]; then
    drift "hooks" "$UNIT_NAME is not enabled (multi-user.target.wants)"
  fi
  for _i in $(ep_ifaces); do chk_routing "$_i"; done
}

# chk_applies: for each concern the config sets (APPLIES: "CONCERN SHA256" per line, the sum of
# the text of the apply pulumi up would run now, "-" when the stack is not known), names one
# - of which this host entry has no completed apply here (lib/owners.sh: never applied, reverted,
#   its first apply failed or was killed, or another entry's) in a line "unapplied CONCERN": its
#   command is not in the stack, so pulumi up applies it and there is nothing to replace;
# - whose last completed apply here is not the one pulumi up would run now (the config, or
#   mptcp-pulumi, changed since) in a line "pending CONCERN": pulumi up runs its apply (it
#   converges the whole concern). Not one whose last apply was rolled back: that apply is the
#   stack's, and chk_rolled_back says what to do.
# Each also as a difference, unless the whole host is unapplied (check.sh says so once).
chk_applies() {
  while read -r _c _sum; do
    [ -n "$_c" ] || continue
    if ! owner_has "$_c"; then
      echo "unapplied $_c"
      if [ ! -d "$STATE_DIR" ]; then
        continue
      elif [ -d "$STATE_DIR/$_c" ]; then
        drift "$_c" "no apply of $_c by host entry $HOST${STACK:+ of stack $STACK} has completed on this host (its managers: $STATE_DIR/$_c/.owners): run pulumi up"
      else
        drift "$_c" "mptcp-pulumi has not applied $_c on this host ($STATE_DIR/$_c is missing): run pulumi up"
      fi
      continue
    fi
    if [ "$_sum" = - ] || [ ! -e "$STATE_DIR/$_c/.applied.sh" ]; then continue; fi
    rb_rolled_back "$_c"
    [ -z "$_rolled" ] || continue
    ! chk_applied_is "$_c" "$_sum" || continue
    echo "pending $_c"
    drift "$_c" "the last apply of $_c here is not the one pulumi up would run now (the config, or mptcp-pulumi, changed since): run pulumi up"
  done <<EOF
$APPLIES
EOF
}

# chk_removed CONCERN...: names each CONCERN (those the config does not set) that this host entry
# applied here in a line "removed CONCERN", and as a difference: pulumi up runs its revert. Not
# without the stack (STACK empty), which cannot tell this entry's applies from another's.
chk_removed() {
  [ -n "$STACK" ] || return 0
  for _c in "$@"; do
    owner_has "$_c" || continue
    echo "removed $_c"
    drift "$_c" "applied here by host entry $HOST, no longer in the config: pulumi up reverts it (when the stack holds its command; an apply Pulumi never recorded, one whose command failed after it completed here, is reverted by pulumi destroy of the host, through its anchor command)"
  done
}

# chk_applied_is CONCERN SHA256: the concern's last completed apply here has the text whose sum
# is SHA256.
chk_applied_is() {
  [ -e "$STATE_DIR/$1/.applied.sh" ] || return 1
  _have=$(sha256sum < "$STATE_DIR/$1/.applied.sh")
  [ "${_have%% *}" = "$2" ]
}

# chk_rolled_back CONCERN PATH: the concern's last apply was undone by its rollback, and the host
# is not back on the apply pulumi up would run now (APPLIES). A rollback to exactly that apply is
# in step: the stack kept the last confirmed config (the failed apply was never recorded) and the
# config is that one again.
chk_rolled_back() {
  rb_rolled_back "$1"
  [ -n "$_rolled" ] || return 0
  _sum=""
  while read -r _c _s; do [ "$_c" != "$1" ] || _sum=$_s; done <<EOF
$APPLIES
EOF
  if [ -n "$_sum" ] && [ "$_sum" != - ] && chk_applied_is "$1" "$_sum"; then return 0; fi
  drift "$2" "the last apply of $1 was rolled back at $_rolled: the host could not be reached to confirm it; it is not in step with the config"
}
