# shellcheck shell=sh
# Rollback of an apply that may cut the management path (endpoints, hooks and routing), like
# `netplan try`: before the first change the apply arms a job, detached from the SSH session,
# that undoes the apply after CONFIRM_TIMEOUT seconds; a confirmation over a new SSH connection,
# made after the change, disarms it. Undoing means re-running the last confirmed apply of the
# concern (its last completed apply, lib/txn.sh, kept at confirmation), or, before any
# confirmation, the concern's revert. The job does not survive a reboot, but its files do: at
# boot the entry point (sync.sh: the boot unit and every interface hook) finds the rollback armed
# with no job and fires it before applying anything, as does the confirmation. Per concern,
# under STATE_DIR/CONCERN/rollback/: undo.sh (what undoes), fire.sh (undoes and records),
# job.sh (the timer), armed (present while armed: when, and which boot; whoever renames it
# first, the job or the confirmation, wins), firing (armed, renamed), log, acked (the apply's
# text, once the client acknowledged a line the apply sent after its change over the connection
# it arrived on); and STATE_DIR/CONCERN/confirmed.sh, STATE_DIR/CONCERN/rolled-back (when and
# why it fired; a later apply that completes clears it) and STATE_DIR/CONCERN/rolled-back.sh (the
# apply the timer undid though the client had acknowledged it: its confirmation never came, as
# when the update stopped at a failure elsewhere or `pulumi up --target` left it out; the next
# confirmation applies it again, rb_confirm).

# rb_unit CONCERN: the transient systemd unit that holds the concern's timer.
rb_unit() { echo "mptcp-pulumi-rollback-$1"; }

# rb_boot: sets _boot to what names this boot: the kernel's boot id and when PID 1 started (a
# container started again on the same kernel has booted again too).
rb_boot() {
  _boot=""
  read -r _boot < /proc/sys/kernel/random/boot_id 2>/dev/null || true
  _st=""
  read -r _st < /proc/1/stat 2>/dev/null || true
  # the fields after the command's name: its start time is the 20th
  set -f
  # shellcheck disable=SC2086 # the words of /proc/1/stat are what is walked (globbing is off)
  set -- ${_st##*) }
  set +f
  [ $# -lt 20 ] || { shift 19; _boot="$_boot $1"; }
}

# rb_fire_text CONCERN: writes the concern's fire.sh: undoes the apply and records when and why
# ($1 of fire.sh, empty for the timer). Run by the job, or at boot under the caller's lock.
rb_fire_text() {
  _rb=$STATE_DIR/$1/rollback
  text_to "$_rb/fire.sh" <<EOF
# the timer, on an apply the client acknowledged: keep it for the next confirmation (rb_confirm)
[ -n "\$1" ] || [ ! -e "$_rb/acked" ] || mv "$_rb/acked" "$STATE_DIR/$1/rolled-back.sh"
MPTCP_PULUMI_UNDO=1 sh "$_rb/undo.sh" > "$_rb/log" 2>&1
rc=\$?
mkdir -p "$STATE_DIR/$1"
# the host is now as the last confirmed apply left it (a revert forgets the last completed one)
# (whole or not at all: a copy aside, renamed; one left by a kill is swept, lib/base.sh)
[ \$rc != 0 ] || [ ! -e "$STATE_DIR/$1/confirmed.sh" ] || { cp "$STATE_DIR/$1/confirmed.sh" "$STATE_DIR/.tmp.fire.\$\$" && mv "$STATE_DIR/.tmp.fire.\$\$" "$STATE_DIR/$1/.applied.sh"; }
echo "\$(date -u +%Y-%m-%dT%H:%M:%SZ) (undo exit \$rc\${1:+, \$1})" > "$STATE_DIR/$1/rolled-back"
rm -f "$_rb/firing"
EOF
}

# rb_arm CONCERN UNDO_FN: arms the rollback of this apply (UNDO_FN prints the revert, used when
# nothing was confirmed before). Does nothing when CONFIRM_TIMEOUT is 0 (rollback off) or in an
# undo.
rb_arm() {
  [ "$CONFIRM_TIMEOUT" != 0 ] && ! undoing || return 0
  _rb=$STATE_DIR/$1/rollback
  rb_disarm "$1" || true
  mkdir -p "$_rb"
  [ ! -e "$STATE_DIR/$1/rolled-back" ] || rm -f "$STATE_DIR/$1/rolled-back"
  [ ! -e "$STATE_DIR/$1/rolled-back.sh" ] || rm -f "$STATE_DIR/$1/rolled-back.sh"
  if [ -e "$STATE_DIR/$1/confirmed.sh" ]; then cp "$STATE_DIR/$1/confirmed.sh" "$_rb/undo.sh"; else "$2" > "$_rb/undo.sh"; fi
  rb_fire_text "$1"
  text_to "$_rb/job.sh" <<EOF
sleep $CONFIRM_TIMEOUT
mv "$_rb/armed" "$_rb/firing" 2>/dev/null || exit 0
exec /bin/sh "$_rb/fire.sh" ""
EOF
  # the time names this arming: the apply's output differs each time, so the confirmation runs;
  # the boot tells the entry point at boot that the job died with the host (rb_fire)
  _armed=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  rb_boot
  printf '%s\n%s\n' "$_armed" "$_boot" > "$_rb/armed"
  if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then
    systemd-run --quiet --collect --unit "$(rb_unit "$1")" /bin/sh "$_rb/job.sh"
  else
    # fd 9 is the host lock: the job must not hold it while it sleeps
    setsid /bin/sh "$_rb/job.sh" < /dev/null > /dev/null 2>&1 9>&- &
    echo $! > "$_rb/pid"
  fi
  say "$1: rollback armed at $_armed: undone in $CONFIRM_TIMEOUT s unless confirmed over a new SSH connection"
}

# rb_disarm CONCERN: stops a pending rollback job (if any) and forgets it; true when one was armed.
rb_disarm() {
  _rb=$STATE_DIR/$1/rollback
  # (the test first: a rename that fails is a process for nothing)
  [ -e "$_rb/armed" ] && mv "$_rb/armed" "$_rb/disarmed" 2>/dev/null || return 1
  if [ -e "$_rb/pid" ]; then kill "$(cat "$_rb/pid")" 2>/dev/null || true; fi
  if [ -d /run/systemd/system ]; then systemctl stop "$(rb_unit "$1")" 2>/dev/null || true; fi
  rm -rf "$_rb"
}

# rb_alive CONCERN: true while the concern's rollback job runs (its timer, or its undo).
rb_alive() {
  _rb=$STATE_DIR/$1/rollback
  if [ -e "$_rb/pid" ]; then
    # a setsid job: the process of that number runs job.sh or fire.sh (after a reboot, it is
    # another's or none)
    _pid=""
    read -r _pid < "$_rb/pid" || true
    [ -n "$_pid" ] && grep -qaF "$_rb/" "/proc/$_pid/cmdline" 2>/dev/null
  elif [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl -q is-active "$(rb_unit "$1").service" 2>/dev/null
  else
    return 1
  fi
}

# rb_pending: true when some concern has a rollback armed or firing (a test, no lock, no process).
rb_pending() {
  for _p in "$STATE_DIR"/*/rollback/armed "$STATE_DIR"/*/rollback/firing; do [ ! -e "$_p" ] || return 0; done
  return 1
}

# rb_fire CONCERN: fires the concern's rollback here and now, under the caller's lock, when it is
# armed (or was firing) and its job is gone: the host rebooted (or the job was killed) before the
# apply was confirmed. True when it fired.
rb_fire() {
  _rb=$STATE_DIR/$1/rollback
  if [ -e "$_rb/armed" ]; then _f=$_rb/armed; elif [ -e "$_rb/firing" ]; then _f=$_rb/firing; else return 1; fi
  ! rb_alive "$1" || return 1
  _at=""
  _was=""
  { read -r _at; read -r _was; } < "$_f" || true
  rb_boot
  if [ "$_was" != "$_boot" ]; then _why="the host rebooted before the apply was confirmed"; else _why="its job was gone before the apply was confirmed"; fi
  [ "$_f" = "$_rb/firing" ] || mv "$_rb/armed" "$_rb/firing" || return 1
  say "$1: the rollback armed at $_at has no job ($_why): undoing the apply now"
  # (a rollback armed by an older mptcp-pulumi has no fire.sh)
  rb_fire_text "$1"
  MPTCP_PULUMI_LOCKED=1 sh "$_rb/fire.sh" "$_why" || true
}

# rb_recover: fires every rollback whose job is gone (rb_fire), under the caller's lock; sets
# _fired to the concerns it fired.
rb_recover() {
  _fired=""
  for _c in "$STATE_DIR"/*/rollback; do
    [ -d "$_c" ] || continue
    _c=${_c%/rollback}
    _c=${_c##*/}
    if rb_fire "$_c"; then _fired="$_fired $_c"; fi
  done
}

# rb_rolled_back CONCERN: sets _rolled to when the concern's last apply was rolled back (empty if not).
rb_rolled_back() {
  _rolled=""
  [ ! -e "$STATE_DIR/$1/rolled-back" ] || read -r _rolled < "$STATE_DIR/$1/rolled-back" || true
}

# rb_confirm CONCERN PATHS: run over a new SSH connection after the apply: the management path
# works, so disarm the rollback and keep the apply (the last completed one) as the last confirmed
# one. Fails, naming when, why and the config PATHS, when the rollback fired (or is firing)
# instead; a rollback whose job a reboot killed fires first (rb_fire).
rb_confirm() {
  rb_fire "$1" || true
  rb_rolled_back "$1"
  [ ! -e "$STATE_DIR/$1/rollback/firing" ] || die "$2: the last apply of $1 is being rolled back right now: $HOST was not confirmed within $CONFIRM_TIMEOUT s. Run pulumi up again in a minute"
  [ -z "$_rolled" ] || [ ! -e "$STATE_DIR/$1/rolled-back.sh" ] || rb_redo "$1" "$2"
  case "$_rolled" in
    "") ;;
    *"rebooted"*) die "$2: the last apply of $1 was rolled back at $_rolled: $HOST rebooted within $CONFIRM_TIMEOUT s after it, before it was confirmed over a new SSH connection, so the apply was undone (at boot, or by this confirmation) and the last confirmed state put back: the host is not in step with the config. To apply the config again: pulumi up --replace the $1 command" ;;
    *) die "$2: the last apply of $1 was rolled back at $_rolled: $HOST could not be reached over a new SSH connection within $CONFIRM_TIMEOUT s after it, so it undid the change by itself and is not in step with the config. Check $2 (a gateway or a source rule on the interface SSH arrives on?), fix it and pulumi up; to retry the same config: pulumi up --replace the $1 command" ;;
  esac
  if rb_disarm "$1"; then say "$1: confirmed over a new SSH connection: rollback disarmed"; else say "$1: confirmed (no rollback was armed)"; fi
  [ -e "$STATE_DIR/$1/.applied.sh" ] || die "$2: $HOST has no completed apply of $1 to confirm ($STATE_DIR/$1/.applied.sh is missing): run pulumi up --replace on the $1 command"
  cp "$STATE_DIR/$1/.applied.sh" "$STATE_DIR/$1/confirmed.sh.tmp.$$" && mv "$STATE_DIR/$1/confirmed.sh.tmp.$$" "$STATE_DIR/$1/confirmed.sh"
}

# rb_redo CONCERN PATHS: under rb_confirm's lock, when the timer undid an apply the client had
# acknowledged (rolled-back.sh): applies it again, armed, and keeps it only if the client
# acknowledges it over this connection (rb_ack); sets _rolled as rb_rolled_back.
rb_redo() {
  _redo=$STATE_DIR/$1/.redo.sh
  mv "$STATE_DIR/$1/rolled-back.sh" "$_redo"
  say "$1: the apply rolled back at $_rolled had been acknowledged by the client, but its confirmation never came (the update stopped at a failure elsewhere, or pulumi up --target left it out): applying it again"
  if ! MPTCP_PULUMI_LOCKED=1 MPTCP_PULUMI_SELF=$(cat "$_redo") sh "$_redo"; then
    rm -f "$_redo"
    die "$2: applying $1 again on $HOST failed (above)"
  fi
  rm -f "$_redo"
  if [ -e "$STATE_DIR/$1/rollback/armed" ] && [ ! -e "$STATE_DIR/$1/rollback/acked" ]; then
    die "$2: $1 was applied again on $HOST, but the client did not acknowledge it over this connection: its rollback undoes it in $CONFIRM_TIMEOUT s; then pulumi up again"
  fi
  rb_rolled_back "$1"
}

# rb_session: sets _acked and _unacked (bytes) of the TCP connection this script arrived on, held
# by an ancestor (sshd); false when there is none or no ss.
rb_session() {
  command -v ss > /dev/null 2>&1 || return 1
  _pids=" "
  _p=$$
  while [ "${_p:-0}" -gt 1 ] 2>/dev/null; do
    _pids="$_pids$_p "
    _st=""
    read -r _st < "/proc/$_p/stat" 2>/dev/null || break
    set -f
    # shellcheck disable=SC2086 # the fields after the command's name: the parent is the second
    set -- ${_st##*) }
    set +f
    _p=${2:-0}
  done
  _s=$(ss -Htnpi state established 2>/dev/null | awk -v pids="$_pids" '
    /^[^ \t]/ { hit = 0; n = split($0, a, "pid="); for (i = 2; i <= n; i++) { split(a[i], b, ","); if (index(pids, " " b[1] " ")) hit = 1 } next }
    hit { ack = 0; un = 0; for (i = 1; i <= NF; i++) { if ($i ~ /^bytes_acked:/) ack = substr($i, 13); if ($i ~ /^unacked:/) un = substr($i, 9) } print ack, un; exit }')
  [ -n "$_s" ] || return 1
  _acked=${_s% *}
  _unacked=${_s#* }
}

# rb_ack CONCERN: while the concern's rollback is armed, sends a line over the connection this
# apply arrived on and waits up to 10 s for the client to acknowledge it (TCP): then keeps the
# apply's text as rollback/acked. The connection is older than the change, so this does not
# confirm; it tells a rollback the timer fired for want of a confirmation (rb_redo).
rb_ack() {
  _rb=$STATE_DIR/$1/rollback
  [ -e "$_rb/armed" ] && rb_session || return 1
  _from=$_acked
  say "$1: asking the client to acknowledge this line over the connection the apply arrived on"
  _n=0
  while [ "$_n" -lt 50 ] && [ -e "$_rb/armed" ]; do
    if rb_session && [ "$_acked" -gt "$_from" ] && [ "$_unacked" = 0 ]; then
      printf '%s\n' "$MPTCP_PULUMI_SELF" > "$_rb/acked.new" && mv "$_rb/acked.new" "$_rb/acked"
      return 0
    fi
    sleep 0.2
    _n=$((_n + 1))
  done
  return 1
}

# rb_settle CONCERN: at the end of an apply that completed: the client acknowledges it (rb_ack);
# the host is as this apply wants it (changed or not), so an earlier rollback of the concern is
# history and its confirmation may succeed. Not in an undo.
rb_settle() {
  undoing && return 0
  rb_ack "$1" || true
  rb_rolled_back "$1"
  [ -n "$_rolled" ] || return 0
  rm -f "$STATE_DIR/$1/rolled-back" "$STATE_DIR/$1/rolled-back.sh"
  say "$1: in step with this apply again (its earlier apply was rolled back at $_rolled)"
}

# rb_forget CONCERN: removes every rollback file of the concern (revert; not in an undo).
rb_forget() {
  undoing && return 0
  rb_disarm "$1" || true
  [ -e "$STATE_DIR/$1/rollback" ] || [ -e "$STATE_DIR/$1/confirmed.sh" ] || [ -e "$STATE_DIR/$1/rolled-back" ] || [ -e "$STATE_DIR/$1/rolled-back.sh" ] || return 0
  rm -rf "$STATE_DIR/$1/rollback" "$STATE_DIR/$1/confirmed.sh" "$STATE_DIR/$1/rolled-back" "$STATE_DIR/$1/rolled-back.sh"
}
