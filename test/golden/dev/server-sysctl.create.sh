sh -s <<'MPTCP_PULUMI_SCRIPT'
# mptcp-pulumi: host server, sysctl apply, generated from mptcp:hosts[0]
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
mp=/proc/sys/net/mptcp
d=$state/sysctl
conf=/etc/sysctl.d/99-mptcp-pulumi.conf
[ -d "$mp" ] || die "this kernel ($(uname -r)) has no MPTCP (/proc/sys/net/mptcp is missing): needs Linux >= 5.6 with CONFIG_MPTCP=y"
# restore_knob KNOB: writes back the value saved before our first apply and forgets it.
restore_knob() { if [ "$(cat "$mp/$1")" != "$(cat "$d/knobs/$1")" ]; then cat "$d/knobs/$1" > "$mp/$1"; fi; rm -f "$d/knobs/$1"; }
restore_conf() {
  if [ -e "$d/conf.orig" ]; then cat "$d/conf.orig" > "$conf"; rm -f "$d/conf.orig"; fi
  if [ -e "$d/conf.absent" ]; then rm -f "$conf" "$d/conf.absent"; fi
}

# 1. check everything the config asks for before changing anything
knobs=""
want() { knobs="$knobs $1"; wanted="${wanted:-}$1 $2
"; }
[ -e "$mp/enabled" ] || die "mptcp:hosts[0].sysctl.enabled: this kernel ($(uname -r)) has no net.mptcp.enabled: remove enabled or upgrade the kernel"
want enabled 1
# 2. capture originals, then apply live
mkdir -p "$d/knobs"
printf '%s' "${wanted:-}" | while read -r k v; do
  keep "$d/knobs/$k" cat "$mp/$k"
  if [ "$(cat "$mp/$k")" != "$v" ]; then printf '%s\n' "$v" > "$mp/$k"; say "net.mptcp.$k = $v"; fi
done
# 3. knobs managed before but no longer in the config go back to their originals
for f in "$d"/knobs/*; do
  [ -e "$f" ] || continue
  k=${f##*/}
  case " $knobs " in *" $k "*) ;; *) restore_knob "$k"; say "net.mptcp.$k restored" ;; esac
done
# 4. persist in our own sysctl.d file (boot applies it)
[ -d /etc/sysctl.d ] || die "/etc/sysctl.d is missing: cannot persist sysctl settings on this host"
if [ ! -e "$d/conf.orig" ] && [ ! -e "$d/conf.absent" ]; then
  if [ -e "$conf" ]; then cp -p "$conf" "$d/conf.orig"; else : > "$d/conf.absent"; fi
fi
{
  echo "# Managed by mptcp-pulumi for host $host; pulumi destroy removes it."
  printf '%s' "${wanted:-}" | while read -r k v; do echo "net.mptcp.$k = $v"; done
} > "$conf.tmp"
if cmp -s "$conf.tmp" "$conf"; then rm -f "$conf.tmp"; else mv "$conf.tmp" "$conf"; say "wrote $conf"; fi
for k in $knobs; do printf 'net.mptcp.%s = %s\n' "$k" "$(cat "$mp/$k")"; done
MPTCP_PULUMI_SCRIPT