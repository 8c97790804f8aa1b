// Renders the host-side shell for each concern of a host (sysctl, limits, endpoints): an
// idempotent `apply` and a `revert` that puts back what the host had before our first apply.
// Originals are saved on the host itself under STATE_DIR before anything changes, so revert
// needs nothing from Pulumi's state, the environment or previous output.
import { HostModel } from "./model";
import { shq } from "./shell";
import { ConcernScripts, needIp, prelude, SYSCTL_CONF } from "./script";
import { ENDPOINT_TABLE_LIB, renderHooks, renderLib } from "./hooks";

export * from "./script";

// ---------------------------------------------------------------- sysctl

export function renderSysctl(host: HostModel): ConcernScripts {
  const at = `mptcp:hosts[${host.index}].sysctl`;
  const wants = host.sysctl.map((s) => {
    if (s.key === "pathManager") {
      // path_manager appeared in 6.15; older kernels have pm_type (0 kernel, 1 userspace).
      return `if [ -e "$mp/path_manager" ]; then want path_manager ${shq(s.value)}
elif [ -e "$mp/pm_type" ]; then want pm_type ${s.value === "kernel" ? 0 : 1}
else die "${at}.pathManager: this kernel ($(uname -r)) has neither net.mptcp.path_manager nor net.mptcp.pm_type: remove pathManager"
fi`;
    }
    const check = `[ -e "$mp/${s.knob}" ] || die "${at}.${s.key}: this kernel ($(uname -r)) has no net.mptcp.${s.knob}: remove ${s.key} or upgrade the kernel"`;
    const scheduler =
      s.key === "scheduler"
        ? `\ngrep -qw -- ${shq(s.value)} "$mp/available_schedulers" || die "${at}.scheduler: scheduler ${s.value} is not available (available: $(cat "$mp/available_schedulers")): pick one of those"`
        : "";
    return `${check}${scheduler}\nwant ${s.knob} ${shq(s.value)}`;
  });

  const common = `mp=/proc/sys/net/mptcp
d=$state/sysctl
conf=${SYSCTL_CONF}
[ -d "$mp" ] || die "this kernel ($(uname -r)) has no MPTCP (/proc/sys/net/mptcp is missing): needs Linux >= 5.6 with CONFIG_MPTCP=y"
# restore_knob KNOB: writes back the value saved before our first apply and forgets it.
restore_knob() { if [ "$(cat "$mp/$1")" != "$(cat "$d/knobs/$1")" ]; then cat "$d/knobs/$1" > "$mp/$1"; fi; rm -f "$d/knobs/$1"; }
restore_conf() {
  if [ -e "$d/conf.orig" ]; then cat "$d/conf.orig" > "$conf"; rm -f "$d/conf.orig"; fi
  if [ -e "$d/conf.absent" ]; then rm -f "$conf" "$d/conf.absent"; fi
}
`;
  const apply = `${prelude(host, "sysctl", "apply")}${common}
# 1. check everything the config asks for before changing anything
knobs=""
want() { knobs="$knobs $1"; wanted="\${wanted:-}$1 $2
"; }
${wants.join("\n")}
# 2. capture originals, then apply live
mkdir -p "$d/knobs"
printf '%s' "\${wanted:-}" | while read -r k v; do
  keep "$d/knobs/$k" cat "$mp/$k"
  if [ "$(cat "$mp/$k")" != "$v" ]; then printf '%s\\n' "$v" > "$mp/$k"; say "net.mptcp.$k = $v"; fi
done
# 3. knobs managed before but no longer in the config go back to their originals
for f in "$d"/knobs/*; do
  [ -e "$f" ] || continue
  k=\${f##*/}
  case " $knobs " in *" $k "*) ;; *) restore_knob "$k"; say "net.mptcp.$k restored" ;; esac
done
# 4. persist in our own sysctl.d file (boot applies it)
[ -d /etc/sysctl.d ] || die "/etc/sysctl.d is missing: cannot persist sysctl settings on this host"
if [ ! -e "$d/conf.orig" ] && [ ! -e "$d/conf.absent" ]; then
  if [ -e "$conf" ]; then cp -p "$conf" "$d/conf.orig"; else : > "$d/conf.absent"; fi
fi
{
  echo "# Managed by mptcp-pulumi for host $host; pulumi destroy removes it."
  printf '%s' "\${wanted:-}" | while read -r k v; do echo "net.mptcp.$k = $v"; done
} > "$conf.tmp"
if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; say "wrote $conf"; fi
for k in $knobs; do printf 'net.mptcp.%s = %s\\n' "$k" "$(cat "$mp/$k")"; done
`;
  const revert = `${prelude(host, "sysctl", "revert")}${common}
if [ -d "$d/knobs" ]; then
  for f in "$d"/knobs/*; do [ -e "$f" ] || continue; restore_knob "\${f##*/}"; done
  rmdir "$d/knobs"
fi
restore_conf
tidy "$d"
say "sysctl restored"
`;
  return { concern: "sysctl", apply, revert };
}

// ---------------------------------------------------------------- limits

export function renderLimits(host: HostModel): ConcernScripts {
  const common = `${needIp}d=$state/limits
# read_limits: sets sf and aa from \`ip mptcp limits show\` ("add_addr_accepted 0 subflows 2").
read_limits() {
  sf="" aa=""
  # shellcheck disable=SC2046
  set -- $(ip mptcp limits show)
  while [ $# -ge 2 ]; do
    case $1 in subflows|subflow) sf=$2 ;; add_addr_accepted) aa=$2 ;; esac
    shift 2
  done
  if [ -z "$sf" ] || [ -z "$aa" ]; then die "cannot read ip mptcp limits (got: $(ip mptcp limits show))"; fi
}
# set_limits SUBFLOWS ADD_ADDR_ACCEPTED: changes the kernel only where it differs.
set_limits() {
  read_limits
  if [ "$sf" != "$1" ] || [ "$aa" != "$2" ]; then
    ip mptcp limits set subflows "$1" add_addr_accepted "$2"
    say "limits: subflows $1 add_addr_accepted $2"
  fi
}
`;
  // A limit the config leaves unset is held at the host's original value.
  const want = (v: number | undefined, field: 1 | 2) => (v === undefined ? `"$(cut -d' ' -f${field} "$d/orig")"` : String(v));
  const apply = `${prelude(host, "limits", "apply")}${common}
read_limits
mkdir -p "$d"
keep "$d/orig" printf '%s %s\\n' "$sf" "$aa"
set_limits ${want(host.limits.subflows, 1)} ${want(host.limits.addAddrAccepted, 2)}
ip mptcp limits show
`;
  const revert = `${prelude(host, "limits", "revert")}${common}
if [ -e "$d/orig" ]; then
  read -r osf oaa < "$d/orig"
  set_limits "$osf" "$oaa"
  rm -f "$d/orig"
fi
tidy "$d"
say "limits restored"
`;
  return { concern: "limits", apply, revert };
}

// ---------------------------------------------------------------- endpoints

export function renderEndpoints(host: HostModel): ConcernScripts {
  // Without hooks, every endpoint must be addable now; with hooks, interfaces that are absent or
  // down get theirs when they come up.
  const checks = host.hooks
    ? ""
    : host.endpoints
        .map((e) => {
          const at = `mptcp:hosts[${host.index}].endpoints[${e.index}]`;
          const dev = shq(e.interface);
          const exists = `ip link show dev ${dev} >/dev/null 2>&1 || die "${at}.interface: interface ${e.interface} does not exist on this host: fix the name (ip link lists them)"`;
          return e.address !== undefined ? exists : `${exists}\nhas_addr ${dev} || die "${at}.address: interface ${e.interface} has no global address now: bring it up with an address, or set address in the config"`;
        })
        .join("\n") + "\n";
  const common = `${needIp}d=$state/endpoints
`;
  const apply = `${prelude(host, "endpoints", "apply")}${common}${renderLib(host)}${checks}lock
# 1. the wanted endpoint table (an address left out in the config: the interface's current one)
want=$(for i in $(ifaces); do ep_want "$i"; done)
# 2. capture the original table once, then replace the table only when it differs
mkdir -p "$d"
keep "$d/orig" shown
printf '%s\n' "$want" | sed '/^$/d' | sort > "$d/want.tmp"
if shown | cmp -s - "$d/want.tmp"; then
  say "endpoints unchanged"
else
  ip mptcp endpoint flush
  add_lines < "$d/want.tmp"
  say "endpoints set"
fi
rm -f "$d/want.tmp"
ip mptcp endpoint show
`;
  const revert = `${prelude(host, "endpoints", "revert")}${common}${ENDPOINT_TABLE_LIB}lock
if [ -e "$d/orig" ]; then
  if ! shown | cmp -s - "$d/orig"; then
    ip mptcp endpoint flush
    add_lines < "$d/orig"
  fi
  rm -f "$d/orig"
fi
tidy "$d"
say "endpoints restored"
`;
  return { concern: "endpoints", apply, revert };
}

/** The concerns a host's config asks for, in apply order. Unset concerns are left alone. */
export function renderHost(host: HostModel): ConcernScripts[] {
  const out: ConcernScripts[] = [];
  if (host.sysctl.length) out.push(renderSysctl(host));
  if (host.limits.subflows !== undefined || host.limits.addAddrAccepted !== undefined) out.push(renderLimits(host));
  if (host.endpoints.length) out.push(renderEndpoints(host));
  if (host.hooks) out.push(renderHooks(host));
  return out;
}
