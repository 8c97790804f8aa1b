# shellcheck shell=sh
# Messages, the state directory and the host lock: what every rendered script builds on.
# POSIX sh functions share one set of variables: a helper's own variables start with "_", which
# no caller uses.

# say MESSAGE...: a line on stdout, prefixed with this host's name.
say() { printf 'mptcp-pulumi[%s]: %s\n' "$HOST" "$*"; }

# die MESSAGE...: a line on stderr, then exit 1.
die() { printf 'mptcp-pulumi[%s]: error: %s\n' "$HOST" "$*" >&2; exit 1; }

# report KIND WORD...: one line of what the apply left on the host ("@applied KIND WORD..."), from
# which the stack's outputs are made (components/applied.ts); words hold no blanks.
report() { printf '@applied %s\n' "$*"; }

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

# state_write FILE COMMAND...: writes COMMAND's output as FILE in one rename, through a temporary
# file of ours (STATE_DIR/.tmp.PID, on FILE's file system): a run killed or a disk found full
# mid-write leaves FILE as it was, and the temporary file is never read as state (state_sweep).
state_write() {
  _sw=$1
  shift
  { "$@" > "$STATE_DIR/.tmp.$$" && mv "$STATE_DIR/.tmp.$$" "$_sw"; } || { rm -f "$STATE_DIR/.tmp.$$"; die "cannot write $_sw (disk full or read-only?)"; }
}

# state_keep FILE COMMAND...: saves COMMAND's output as FILE unless FILE exists, so the original
# is captured once, at the first apply. (Callers hold the lock.)
state_keep() {
  [ -e "$1" ] && return 0
  [ -d "${1%/*}" ] || mkdir -p "${1%/*}"
  state_write "$@"
}

# state_sweep: removes the temporary files of runs that ended without removing them (killed, or
# older versions that kept them beside the state as NAME.tmp.PID), so no loop over the state
# reads one. Called with the lock held, when nothing else of ours writes.
state_sweep() {
  for _t in "$STATE_DIR"/.tmp.* "$STATE_DIR"/*/*.tmp.[0-9]* "$STATE_DIR"/*/.*.tmp.[0-9]* "$STATE_DIR"/*/*/*.tmp.[0-9]*; do
    case $_t in
      "$STATE_DIR"/.tmp.*) [ -e "$_t" ] || [ -L "$_t" ] || continue; rm -rf "$_t" ;;
      # (a file only: a service's state directory may be named like one)
      *) if [ -f "$_t" ] && [ ! -L "$_t" ]; then rm -f "$_t"; fi ;;
    esac
  done
}

# state_dir DIR: creates our state directory and DIR, a concern's, in it (root's alone: 0700).
state_dir() {
  if [ ! -d "$STATE_DIR" ]; then
    mkdir -m 700 "$STATE_DIR" "$1"
  elif [ ! -d "$1" ]; then
    mkdir -m 700 "$1"
  fi
}

# state_need CONCERN PATH: a revert can restore only what the apply saved under PATH; without it
# (our state directory removed by hand) it must fail, never claim it restored anything.
state_need() {
  [ -e "$2" ] && return 0
  # an undo of an apply that failed before it saved anything: nothing had changed
  undoing && exit 0
  die "cannot restore $1: $2 is missing (was $STATE_DIR removed by hand?), so the host's original $1 is unknown and the host keeps what mptcp-pulumi applied. Put the $1 back by hand, then remove this command from the stack (pulumi state delete with its URN)"
}

# state_tidy DIR: removes a concern's state directory once it is empty (but for the mark of a
# revert under way, lib/txn.sh, and the emptied files/ of lib/files.sh), then our state directory
# and the lock once they are.
state_tidy() {
  [ ! -e "$1/.reverting" ] || rm -f "$1/.reverting"
  rmdir "$1/files" "$1" 2>/dev/null || true
  if rmdir "$STATE_DIR" 2>/dev/null; then rm -f "$LOCK_FILE"; fi
}

# state_lock: serializes every apply, revert and interface hook on this host (30 s at most);
# held until exit or until fd 9 is closed. Not taken again under a caller that holds it
# (MPTCP_PULUMI_LOCKED set). The lock file is root's alone (0600, like the state directory), so
# no other user can hold it and stall applies and hooks. The last revert removes the file
# (state_tidy) while others may wait on it: whoever then gets the lock of a file no longer at
# LOCK_FILE locks the new one instead. With the lock held, temporary files left by a run that
# died are removed (state_sweep), and this run's are removed when it exits (tmp_clean).
state_lock() {
  [ -z "${MPTCP_PULUMI_LOCKED:-}" ] || return 0
  command -v flock >/dev/null 2>&1 || return 0
  while :; do
    if [ -e "$LOCK_FILE" ]; then
      # made by a version that left it 0644 (and the state directory 0755); it may be gone now
      if [ -d "$STATE_DIR" ]; then chmod go= "$LOCK_FILE" "$STATE_DIR" 2>/dev/null || true; else chmod go= "$LOCK_FILE" 2>/dev/null || true; fi
      exec 9>>"$LOCK_FILE"
    else
      umask 077
      exec 9>>"$LOCK_FILE"
      umask 022
    fi
    flock -w 30 9 || die "another mptcp-pulumi apply or hook has held $LOCK_FILE for 30 s: retry, or find it with: fuser -v $LOCK_FILE"
    # (where /proc cannot show our descriptor, e.g. entered with nsenter, the check is skipped).
    # test's -ef compares device and inode without starting a process: dash, bash, busybox ash
    # and ksh have it; a sh without it fails the test, which skips the check as above.
    [ -e /proc/self/fd/9 ] || break
    # shellcheck disable=SC3013
    [ ! /proc/self/fd/9 -ef "$LOCK_FILE" ] || break
  done
  state_sweep
  trap tmp_clean EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

# tmp_clean: the EXIT trap of a run holding the lock: removes the temporary files it (or an undo
# it ran) was writing when it ended: our state's, and the staging directory of a file being
# installed (lib/files.sh).
tmp_clean() {
  [ -z "${_stage:-}" ] || rm -rf "$_stage"
  state_sweep
}
