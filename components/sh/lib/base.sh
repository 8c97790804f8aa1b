# shellcheck shell=sh
# Messages, the state directory and the host lock: what every rendered script builds on.
# POSIX sh functions share one set of variables: a helper's own variables start with "_", which
# no caller uses.

# say MESSAGE...: a line on stdout, prefixed with this host's name.
say() { printf 'mptcp-pulumi[%s]: %s\n' "$HOST" "$*"; }

# die MESSAGE...: a line on stderr, then exit 1.
die() { printf 'mptcp-pulumi[%s]: error: %s\n' "$HOST" "$*" >&2; exit 1; }

# lines TEXT: prints TEXT as lines: followed by a newline, or nothing when TEXT is empty.
lines() { [ -z "$1" ] || printf '%s\n' "$1"; }

# text_to FILE: writes stdin (a few lines, each ending in a newline) to FILE with the read
# builtin: a `cat` that starts no process.
text_to() { while IFS= read -r _l; do printf '%s\n' "$_l"; done > "$1"; }

# word_after WORD TEXT...: sets _w to the word after the first WORD among the words of TEXT
# (empty when there is none): what `awk` did in a pipeline, without a process.
word_after() {
  _key=$1
  shift
  _w=""
  set -f
  # shellcheck disable=SC2048,SC2086 # the words of TEXT are what is walked (globbing is off)
  set -- $*
  set +f
  while [ $# -ge 2 ]; do
    if [ "$1" = "$_key" ]; then _w=$2; return 0; fi
    shift
  done
}

# need_ip: iproute2 with `ip mptcp` is there, or a clear error.
need_ip() {
  command -v ip >/dev/null 2>&1 || die "ip (iproute2) is not installed"
  ip mptcp limits show >/dev/null 2>&1 || die "ip mptcp does not work here: needs iproute2 >= 5.7 and a kernel with MPTCP (>= 5.6)"
}

# state_keep FILE COMMAND...: saves COMMAND's output as FILE unless FILE exists, so the original
# is captured once, at the first apply. (Callers hold the lock; the temporary file is per run.)
state_keep() {
  _keep=$1
  shift
  [ -e "$_keep" ] && return 0
  [ -d "${_keep%/*}" ] || mkdir -p "${_keep%/*}"
  { "$@" > "$_keep.tmp.$$" && mv "$_keep.tmp.$$" "$_keep"; } || { rm -f "$_keep.tmp.$$"; die "cannot save $_keep"; }
}

# state_need CONCERN PATH: a revert can restore only what the apply saved under PATH; without it
# (our state directory removed by hand) it must fail, never claim it restored anything.
state_need() {
  [ -e "$2" ] && return 0
  # an undo of an apply that failed before it saved anything: nothing had changed
  undoing && exit 0
  die "cannot restore $1: $2 is missing (was $STATE_DIR removed by hand?), so the host's original $1 is unknown and the host keeps what mptcp-pulumi applied. Put the $1 back by hand, then remove this command from the stack (pulumi state delete with its URN)"
}

# state_tidy DIR: removes a concern's state directory once it is empty, then our state directory
# and the lock once they are.
state_tidy() {
  rmdir "$1" 2>/dev/null || true
  if rmdir "$STATE_DIR" 2>/dev/null; then rm -f "$LOCK_FILE"; fi
}

# state_lock: serializes every apply, revert and interface hook on this host (30 s at most);
# held until exit or until fd 9 is closed. Not taken again under a caller that holds it
# (MPTCP_PULUMI_LOCKED set). The last revert removes the file (state_tidy) while others may wait
# on it: whoever then gets the lock of a file no longer at LOCK_FILE locks the new one instead.
state_lock() {
  [ -z "${MPTCP_PULUMI_LOCKED:-}" ] || return 0
  command -v flock >/dev/null 2>&1 || return 0
  while :; do
    exec 9>>"$LOCK_FILE"
    flock -w 30 9 || die "another mptcp-pulumi apply or hook has held $LOCK_FILE for 30 s: retry, or find it with: fuser -v $LOCK_FILE"
    # (where /proc cannot show our descriptor, e.g. entered with nsenter, the check is skipped).
    # test's -ef compares device and inode without starting a process: dash, bash, busybox ash
    # and ksh have it; a sh without it fails the test, which skips the check as above.
    [ -e /proc/self/fd/9 ] || return 0
    # shellcheck disable=SC3013
    [ ! /proc/self/fd/9 -ef "$LOCK_FILE" ] || return 0
  done
}
