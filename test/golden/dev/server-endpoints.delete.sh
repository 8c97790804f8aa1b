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