# shellcheck shell=sh
# Rollback of an apply that may cut the management path (endpoints, hooks and routing), like
# `netplan try`: before the first change the apply arms a job, detached from the SSH session,
# that undoes the apply after CONFIRM_TIMEOUT seconds; a confirmation over a new SSH connection,
# made after the change, disarms it. Undoing means re-running the last confirmed apply of the
# concern (its last completed apply, lib/txn.sh, kept at confirmation), or, before any
# confirmation, the concern's revert. Per concern,
# under STATE_DIR/CONCERN/rollback/: undo.sh (what undoes), job.sh (the timer), armed (present
# while armed; whoever renames it first, the job or the confirmation, wins), log; and
# STATE_DIR/CONCERN/confirmed.sh, STATE_DIR/CONCERN/rolled-back (when and why it fired).

# rb_unit CONCERN: the transient systemd unit that holds the concern's timer.
rb_unit() { echo "mptcp-pulumi-rollback-$1"; }

# rb_arm CONCERN UNDO_FN: arms the rollback of this apply (UNDO_FN prints the revert, used when
# nothing was confirmed before). Does nothing when CONFIRM_TIMEOUT is 0 (rollback off) or in an
# undo.
rb_arm() {
  [ "$CONFIRM_TIMEOUT" != 0 ] && ! undoing || return 0
  _rb=$STATE_DIR/$1/rollback
  rb_disarm "$1" || true
  mkdir -p "$_rb"
  [ ! -e "$STATE_DIR/$1/rolled-back" ] || rm -f "$STATE_DIR/$1/rolled-back"
  if [ -e "$STATE_DIR/$1/confirmed.sh" ]; then cp "$STATE_DIR/$1/confirmed.sh" "$_rb/undo.sh"; else "$2" > "$_rb/undo.sh"; fi
  text_to "$_rb/job.sh" <<EOF
sleep $CONFIRM_TIMEOUT
mv "$_rb/armed" "$_rb/firing" 2>/dev/null || exit 0
MPTCP_PULUMI_UNDO=1 sh "$_rb/undo.sh" > "$_rb/log" 2>&1
rc=\$?
mkdir -p "$STATE_DIR/$1"
# the host is now as the last confirmed apply left it (a revert forgets the last completed one)
[ \$rc != 0 ] || [ ! -e "$STATE_DIR/$1/confirmed.sh" ] || cp "$STATE_DIR/$1/confirmed.sh" "$STATE_DIR/$1/.applied.sh"
echo "\$(date -u +%Y-%m-%dT%H:%M:%SZ) (undo exit \$rc)" > "$STATE_DIR/$1/rolled-back"
rm -f "$_rb/firing"
EOF
  # the time names this arming: the apply's output differs each time, so the confirmation runs
  _armed=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  printf '%s\n' "$_armed" > "$_rb/armed"
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

# rb_rolled_back CONCERN: sets _rolled to when the concern's last apply was rolled back (empty if not).
rb_rolled_back() {
  _rolled=""
  [ ! -e "$STATE_DIR/$1/rolled-back" ] || read -r _rolled < "$STATE_DIR/$1/rolled-back" || true
}

# rb_confirm CONCERN PATHS: run over a new SSH connection after the apply: the management path
# works, so disarm the rollback and keep the apply (the last completed one) as the last confirmed
# one. Fails, naming when and the config PATHS, when the rollback fired (or is firing) instead.
rb_confirm() {
  rb_rolled_back "$1"
  [ ! -e "$STATE_DIR/$1/rollback/firing" ] || die "$2: the last apply of $1 is being rolled back right now: $HOST was not confirmed within $CONFIRM_TIMEOUT s. Run pulumi up again in a minute"
  [ -z "$_rolled" ] || die "$2: the last apply of $1 was rolled back at $_rolled: $HOST could not be reached over a new SSH connection within $CONFIRM_TIMEOUT s after it, so it undid the change by itself and is not in step with the config. Check $2 (a gateway or a source rule on the interface SSH arrives on?), fix it and pulumi up; to retry the same config: pulumi up --replace the $1 command"
  if rb_disarm "$1"; then say "$1: confirmed over a new SSH connection: rollback disarmed"; else say "$1: confirmed (no rollback was armed)"; fi
  [ -e "$STATE_DIR/$1/.applied.sh" ] || die "$2: $HOST has no completed apply of $1 to confirm ($STATE_DIR/$1/.applied.sh is missing): run pulumi up --replace on the $1 command"
  cp "$STATE_DIR/$1/.applied.sh" "$STATE_DIR/$1/confirmed.sh.tmp.$$" && mv "$STATE_DIR/$1/confirmed.sh.tmp.$$" "$STATE_DIR/$1/confirmed.sh"
}

# rb_forget CONCERN: removes every rollback file of the concern (revert; not in an undo).
rb_forget() {
  undoing && return 0
  rb_disarm "$1" || true
  [ -e "$STATE_DIR/$1/rollback" ] || [ -e "$STATE_DIR/$1/confirmed.sh" ] || [ -e "$STATE_DIR/$1/rolled-back" ] || return 0
  rm -rf "$STATE_DIR/$1/rollback" "$STATE_DIR/$1/confirmed.sh" "$STATE_DIR/$1/rolled-back"
}
