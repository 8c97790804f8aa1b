// Keeping a host's MPTCP state right as interfaces come and go. One host-side entry point,
// /usr/local/sbin/mptcp-pulumi-sync, brings an interface in line with the config (its
// endpoints, its source routing, rp_filter); the ifupdown, NetworkManager and dhclient hooks and
// the boot unit only call it. The endpoints concern embeds the same shell library (renderLib),
// so "which endpoints an interface should have" has one implementation.
import { HostModel } from "./model";
import { shq } from "./shell";
import { ConcernScripts, needIp, prelude } from "./script";

export const SYNC_PATH = "/usr/local/sbin/mptcp-pulumi-sync";
export const UNIT_NAME = "mptcp-pulumi.service";

/** Words after the address, in the order `ip mptcp endpoint show` prints them. */
export function endpointTail(e: HostModel["endpoints"][number]): string {
  return [e.port !== undefined ? `port ${e.port}` : "", `id ${e.id}`, ...e.flags, `dev ${e.interface}`].filter(Boolean).join(" ");
}

/** The endpoint table as a whole: what the endpoints concern's apply and revert both need. */
export const ENDPOINT_TABLE_LIB = `# shown: the endpoint table as \`ip mptcp endpoint show\` prints it, trailing blanks dropped, sorted,
# less implicit endpoints: the kernel creates those for subflows' local addresses and owns them
# (they cannot be added; iproute2 < 6.5 prints them as "rawflags 10").
shown() { ip mptcp endpoint show | grep -v -e ' implicit' -e ' rawflags ' | sed 's/[[:space:]]*$//' | sort; }
# add_lines: adds every endpoint line on stdin; a line is exactly the arguments of \`ip mptcp endpoint add\`.
add_lines() {
  while read -r line; do
    [ -n "$line" ] || continue
    set -f
    # shellcheck disable=SC2086
    ip mptcp endpoint add $line || die "ip mptcp endpoint add $line failed"
    set +f
  done
}
`;

/** Clearing one of our routing tables: what the sync script and the hooks revert both need. */
const ROUTE_CLEAR_LIB = `# route_clear TABLE: removes every rule to TABLE and all of its routes, IPv4 and IPv6.
route_clear() {
  for fam in -4 -6; do
    while ip "$fam" rule del table "$1" 2>/dev/null; do :; done
    ip "$fam" route flush table "$1" 2>/dev/null || true
  done
}
`;

/**
 * The host's interface data and the shell functions over it (including the two pieces above). Needs the prelude (die, keep).
 * With hooks, an interface without a global address gets no endpoints (announcing an address
 * that cannot be reached makes the peer's join fail for good); the hooks add them when it comes up.
 */
export function renderLib(host: HostModel): string {
  const endpoints = host.endpoints.map((e) => `${e.interface}|${e.address ?? ""}|${endpointTail(e)}`).join("\n");
  const routing = host.routing.map((r) => `${r.interface}|${r.mode}|${r.table}|${r.priority}|${r.gateway ?? ""}`).join("\n");
  return `# ---- this host's interfaces (from mptcp:hosts[${host.index}])
# endpoints: interface|address (empty: its current one)|the rest of \`ip mptcp endpoint add\`
ENDPOINTS=${shq(endpoints)}
# routing: interface|mode|table|priority|gateway
ROUTING=${shq(routing)}
HOOKS=${host.hooks ? 1 : 0}
# addr_of IFACE -4|-6: the interface's first global address.
addr_of() { ip -o "$2" addr show dev "$1" scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }'; }
has_addr() { [ -n "$(addr_of "$1" -4)$(addr_of "$1" -6)" ]; }
# ifaces: the host's endpoint interfaces.
ifaces() { printf '%s\\n' "$ENDPOINTS" | cut -d'|' -f1 | awk 'NF && !seen[$0]++'; }
${ENDPOINT_TABLE_LIB}# ep_want IFACE: the endpoint lines the config gives the interface now.
ep_want() {
  printf '%s\\n' "$ENDPOINTS" | while IFS='|' read -r i a rest; do
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
  for id in $( { ep_have "$1"; printf '%s\\n' "$ENDPOINTS" | awk -F'|' -v i="$1" '$1 == i { print "x " $3 }'; } | awk '{ for (n = 1; n < NF; n++) if ($n == "id") print $(n + 1) }' | sort -u); do
    ip mptcp endpoint delete id "$id" 2>/dev/null || true
  done
}
# ep_set IFACE force|ifneeded: (re)creates the interface's endpoints; force re-announces them.
ep_set() {
  want=$(ep_want "$1" | sort)
  if [ "$2" != force ] && [ "$want" = "$(ep_have "$1" | sort)" ]; then return 0; fi
  ep_clear "$1"
  printf '%s\\n' "$want" | add_lines
}
# route_entry IFACE: sets mode table prio gw from ROUTING; false when the interface has none.
route_entry() {
  entry=$(printf '%s\\n' "$ROUTING" | awk -F'|' -v i="$1" '$1 == i')
  [ -n "$entry" ] || return 1
  IFS='|' read -r _ mode table prio gw <<EOF
$entry
EOF
}
${ROUTE_CLEAR_LIB}# via FAMILY IFACE: the gateway of the main table's default route through the interface.
via() { ip "$1" route show default dev "$2" 2>/dev/null | awk '{ for (n = 1; n < NF; n++) if ($n == "via") { print $(n + 1); exit } }'; }
# route_set IFACE [GATEWAY]: the interface's source routing, from scratch (one rule per address).
route_set() {
  route_entry "$1" || return 0
  [ -n "$gw" ] || gw=\${2:-}
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
    up) ep_set "$1" force; route_set "$1" "\${3:-}" ;;
    change) ep_set "$1" ifneeded; route_set "$1" "\${3:-}" ;;
    down) ep_clear "$1"; route_down "$1" ;;
    *) die "unknown event $2 (up, change or down)" ;;
  esac
}
`;
}

/** The host's limits at boot: the config's, or the host's original where the config is silent. */
function bootLimits(host: HostModel): string {
  if (host.limits.subflows === undefined && host.limits.addAddrAccepted === undefined) return "boot_limits() { :; }";
  const v = (n: number | undefined, field: 1 | 2) => (n === undefined ? `$(cut -d' ' -f${field} "$state/limits/orig")` : String(n));
  return `boot_limits() { ip mptcp limits set subflows "${v(host.limits.subflows, 1)}" add_addr_accepted "${v(host.limits.addAddrAccepted, 2)}"; }`;
}

/** /usr/local/sbin/mptcp-pulumi-sync: the one host-side entry point. */
export function renderSyncScript(host: HostModel): string {
  return `#!/bin/sh
${prelude(host, "interface sync", "(hooks and boot)")}# Installed by mptcp-pulumi; pulumi destroy removes it.
# Usage: ${SYNC_PATH} IFACE up|change|down [GATEWAY]   one interface (called by the hooks)
#        ${SYNC_PATH} boot                            limits, then every interface that is up
#        ${SYNC_PATH} apply                           routing of every interface (called by pulumi up)
${needIp}${renderLib(host)}${bootLimits(host)}
case "\${1:-}" in
  boot)
    lock
    boot_limits
    for i in $(ifaces); do if has_addr "$i"; then iface_sync "$i" change; fi; done
    ;;
  apply)
    lock
    if [ -e "$state/hooks/tables" ]; then
      while read -r t; do
        printf '%s\\n' "$ROUTING" | cut -d'|' -f3 | grep -qx "$t" || route_clear "$t"
      done < "$state/hooks/tables"
    fi
    for i in $(ifaces); do if has_addr "$i"; then route_set "$i"; else route_down "$i"; fi; done
    ;;
  ""|-h|--help)
    sed -n 's/^# Usage: /       /p; s/^#        /       /p' "$0"
    ;;
  *)
    [ $# -ge 2 ] || die "usage: $0 IFACE up|change|down [GATEWAY]"
    ifaces | grep -qx -- "$1" || exit 0
    lock
    iface_sync "$1" "$2" "\${3:-}"
    ;;
esac
`;
}

export interface HookFile {
  path: string;
  mode: string;
  /** Install only when this directory exists (the subsystem is present). */
  onlyIn?: string;
  content: string;
}

export function renderHookFiles(host: HostModel): HookFile[] {
  const head = (what: string) => `#!/bin/sh
# mptcp-pulumi: host ${host.name}, ${what}. Installed by mptcp-pulumi; pulumi destroy removes it.
`;
  return [
    { path: SYNC_PATH, mode: "755", content: renderSyncScript(host) },
    {
      path: "/etc/network/if-up.d/mptcp_up",
      mode: "755",
      onlyIn: "/etc/network/if-up.d",
      content: `${head("ifupdown if-up hook")}# ifupdown sets IFACE, MODE, PHASE, ADDRFAM, METHOD and IF_<option> (IF_GATEWAY ...).
# NetworkManager's 01-ifupdown bridge runs this too (ADDRFAM=NetworkManager): our dispatcher script handles those.
case "$IFACE" in lo|--all) exit 0 ;; esac
[ "\${ADDRFAM:-}" != NetworkManager ] || exit 0
exec ${SYNC_PATH} "$IFACE" up "\${IF_GATEWAY:-}"
`,
    },
    {
      path: "/etc/network/if-post-down.d/mptcp_down",
      mode: "755",
      onlyIn: "/etc/network/if-post-down.d",
      content: `${head("ifupdown if-post-down hook")}case "$IFACE" in lo|--all) exit 0 ;; esac
[ "\${ADDRFAM:-}" != NetworkManager ] || exit 0
exec ${SYNC_PATH} "$IFACE" down
`,
    },
    {
      path: "/etc/NetworkManager/dispatcher.d/70-mptcp-pulumi",
      mode: "755",
      onlyIn: "/etc/NetworkManager/dispatcher.d",
      content: `${head("NetworkManager dispatcher script")}# Arguments: interface, action. dhcp4-change/dhcp6-change are address changes (renewals).
case "$2" in
  up|reapply) exec ${SYNC_PATH} "$1" up "\${IP4_GATEWAY:-}" ;;
  dhcp4-change|dhcp6-change|connectivity-change) exec ${SYNC_PATH} "$1" change "\${IP4_GATEWAY:-}" ;;
  down|pre-down) exec ${SYNC_PATH} "$1" down ;;
esac
`,
    },
    {
      path: "/etc/dhcp/dhclient-exit-hooks.d/mptcp-pulumi",
      mode: "644",
      onlyIn: "/etc/dhcp/dhclient-exit-hooks.d",
      content: `# mptcp-pulumi: host ${host.name}, dhclient exit hook. Installed by mptcp-pulumi; pulumi destroy removes it.
# dhclient-script sources this file (no exit, no set -e here) with $reason, $interface,
# $new_ip_address, $old_ip_address, $new_routers.
mptcp_pulumi_router=\${new_routers:-}
case "\${reason:-}" in
  BOUND|RENEW|REBIND|REBOOT|BOUND6|RENEW6|REBIND6) ${SYNC_PATH} "\${interface:-}" change "\${mptcp_pulumi_router%% *}" || true ;;
  EXPIRE|FAIL|RELEASE|STOP|EXPIRE6|RELEASE6|STOP6) ${SYNC_PATH} "\${interface:-}" down || true ;;
esac
unset mptcp_pulumi_router
`,
    },
    {
      path: `/etc/systemd/system/${UNIT_NAME}`,
      mode: "644",
      onlyIn: "/etc/systemd/system",
      content: `# mptcp-pulumi: host ${host.name}, boot unit. Installed by mptcp-pulumi; pulumi destroy removes it.
[Unit]
Description=MPTCP limits and endpoints of interfaces that are up (mptcp-pulumi)
After=network.target systemd-sysctl.service

[Service]
Type=oneshot
ExecStart=${SYNC_PATH} boot
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
`,
    },
  ];
}

const FILE_MARK = "MPTCP_PULUMI_FILE";

/** The hooks concern: installs the entry point, hooks and boot unit, then applies routing. */
export function renderHooks(host: HostModel): ConcernScripts {
  const files = renderHookFiles(host);
  const wants = `/etc/systemd/system/multi-user.target.wants/${UNIT_NAME}`;
  const common = `${needIp}d=$state/hooks
# remember PATH: keeps what PATH is before we first write it (a copy, or that it was absent).
remember() {
  b=$d/files$1
  [ ! -e "$b.orig" ] && [ ! -e "$b.absent" ] || return 0
  mkdir -p "\${b%/*}"
  if [ -e "$1" ] || [ -L "$1" ]; then cp -pP "$1" "$b.orig"; else : > "$b.absent"; fi
}
# install FILE MODE: writes stdin to FILE, remembering what was there.
install() {
  remember "$1"
  cat > "$1.tmp"
  chmod "$2" "$1.tmp"
  if cmp -s "$1.tmp" "$1" && [ "$(stat -c %a "$1")" = "$2" ]; then rm -f "$1.tmp"; else mv "$1.tmp" "$1"; fi
}
# restore_files: puts back or removes every file install wrote.
restore_files() {
  [ -d "$d/files" ] || return 0
  find "$d/files" -type f | while read -r b; do
    f=\${b#"$d/files"}
    case $b in
      *.orig) f=\${f%.orig}; rm -f "$f"; cp -pP "$b" "$f" ;;
      *.absent) rm -f "\${f%.absent}" ;;
    esac
    rm -f "$b"
  done
  find "$d/files" -depth -type d -exec rmdir {} + 2>/dev/null || true
}
systemd_reload() { if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload; fi; }
`;
  const installs = files
    .map((f) => {
      const body = `install ${f.path} ${f.mode} <<'${FILE_MARK}'\n${f.content}${FILE_MARK}`;
      return f.onlyIn ? `if [ -d ${f.onlyIn} ]; then\n${body}\nfi` : body;
    })
    .join("\n");
  for (const f of files) if (f.content.split("\n").includes(FILE_MARK)) throw new Error(`${f.path} contains ${FILE_MARK}`);
  const apply = `${prelude(host, "hooks", "apply")}${common}lock
mkdir -p "$d"
${installs}
# enable the boot unit (what systemctl enable does, also where systemd is not running)
if [ -d /etc/systemd/system ]; then
  if [ ! -d /etc/systemd/system/multi-user.target.wants ]; then
    mkdir /etc/systemd/system/multi-user.target.wants
    echo /etc/systemd/system/multi-user.target.wants >> "$d/created-dirs"
  fi
  if [ "$(readlink ${wants} 2>/dev/null)" != ../${UNIT_NAME} ]; then
    remember ${wants}
    ln -sfn ../${UNIT_NAME} ${wants}
  fi
  systemd_reload
fi
# release the lock: the entry point takes it for the routing of every interface
exec 9>&-
${SYNC_PATH} apply
say "hooks installed"
`;
  const revert = `${prelude(host, "hooks", "revert")}${common}${ROUTE_CLEAR_LIB}lock
if [ -d "$d" ]; then
  if [ -e "$d/tables" ]; then
    while read -r t; do route_clear "$t"; done < "$d/tables"
    rm -f "$d/tables"
  fi
  if [ -d "$d/rp_filter" ]; then
    for f in "$d"/rp_filter/*; do
      [ -e "$f" ] || continue
      p=/proc/sys/net/ipv4/conf/\${f##*/}/rp_filter
      if [ -e "$p" ]; then cat "$f" > "$p"; fi
      rm -f "$f"
    done
    rmdir "$d/rp_filter"
  fi
  restore_files
  if [ -e "$d/created-dirs" ]; then
    while read -r dir; do rmdir "$dir" 2>/dev/null || true; done < "$d/created-dirs"
    rm -f "$d/created-dirs"
  fi
  systemd_reload
fi
tidy "$d"
say "hooks removed"
`;
  return { concern: "hooks", apply, revert };
}

