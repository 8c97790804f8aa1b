sh -s <<'MPTCP_PULUMI_SCRIPT'
# mptcp-pulumi: host server, sysctl revert, generated from mptcp:hosts[0]
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

if [ -d "$d/knobs" ]; then
  for f in "$d"/knobs/*; do [ -e "$f" ] || continue; restore_knob "${f##*/}"; done
  rmdir "$d/knobs"
fi
restore_conf
tidy "$d"
say "sysctl restored"
MPTCP_PULUMI_SCRIPT