sh -s <<'MPTCP_PULUMI_SCRIPT'
# mptcp-pulumi: host server, endpoints apply, generated from mptcp:hosts[0]
set -eu
umask 022
host=server
state=/var/lib/mptcp-pulumi
say() { printf 'mptcp-pulumi[%s]: %s\n' "$host" "$*"; }
die() { printf 'mptcp-pulumi[%s]: error: %s\n' "$host" "$*" >&2; exit 1; }
# keep FILE CMD...: saves CMD's output as FILE unless FILE exists (the original is captured once).
keep() { f=$1; shift; [ -e "$f" ] && return 0; mkdir -p "${f%/*}"; "$@" > "$f.tmp"; mv "$f.tmp" "$f"; }
# tidy DIR: removes our state directory once it is empty.
tidy() { rmdir "$1" 2>/dev/null || true; rmdir "$state" 2>/dev/null || true; }
command -v ip >/dev/null 2>&1 || die "ip (iproute2) is not installed"
ip mptcp limits show >/dev/null 2>&1 || die "ip mptcp does not work here: needs iproute2 >= 5.7 and a kernel with MPTCP (>= 5.6)"
d=$state/endpoints
# shown: the endpoint table as `ip mptcp endpoint show` prints it, trailing blanks dropped, sorted,
# less implicit endpoints: the kernel creates those for subflows' local addresses and owns them
# (they cannot be added; iproute2 < 6.5 prints them as "rawflags 10").
shown() { ip mptcp endpoint show | grep -v -e ' implicit' -e ' rawflags ' | sed 's/[[:space:]]*$//' | sort; }
# add_all FILE: adds every endpoint line of FILE; a line is exactly the arguments of `ip mptcp endpoint add`.
add_all() {
  while read -r line; do
    [ -n "$line" ] || continue
    set -f
    # shellcheck disable=SC2086
    ip mptcp endpoint add $line || die "ip mptcp endpoint add $line failed"
    set +f
  done < "$1"
}

# 1. resolve the wanted endpoint table (addresses left out in the config: the interface's current one)
want=$(
ip link show dev wlan0 >/dev/null 2>&1 || die "mptcp:hosts[0].endpoints[0].interface: interface wlan0 does not exist on this host: fix the name (ip link lists them)"
echo '10.22.18.33 id 1 signal dev wlan0'
)
# 2. capture the original table once, then replace the table only when it differs
mkdir -p "$d"
keep "$d/orig" shown
printf '%s\n' "$want" | sort > "$d/want.tmp"
if shown | cmp -s - "$d/want.tmp"; then
  say "endpoints unchanged"
else
  ip mptcp endpoint flush
  add_all "$d/want.tmp"
  say "endpoints set"
fi
rm -f "$d/want.tmp"
ip mptcp endpoint show
MPTCP_PULUMI_SCRIPT