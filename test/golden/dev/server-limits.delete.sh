sh -s <<'MPTCP_PULUMI_SCRIPT'
# mptcp-pulumi: host server, limits revert, generated from mptcp:hosts[0]
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
d=$state/limits
# read_limits: sets sf and aa from `ip mptcp limits show` ("add_addr_accepted 0 subflows 2").
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

if [ -e "$d/orig" ]; then
  read -r osf oaa < "$d/orig"
  set_limits "$osf" "$oaa"
  rm -f "$d/orig"
fi
tidy "$d"
say "limits restored"
MPTCP_PULUMI_SCRIPT