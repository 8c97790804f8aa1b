# shellcheck shell=sh
# Transactional applies. An apply that fails half-way (a command failing, the SSH session cut,
# the script terminated) puts the host back as it was before it began, and says so; one killed
# outright (no trap runs) is put back by the next apply or revert on the host, before it does
# anything else. "As it was" is the concern's last completed apply, which every apply keeps on
# the host as STATE_DIR/CONCERN/.applied.sh (its own text, MPTCP_PULUMI_SELF), run again; or,
# before any completed, the concern's revert. While an apply runs, STATE_DIR/CONCERN holds .txn
# (the transaction: the line naming this host entry, lib/owners.sh; its time is when the apply
# began), .applied.sh.new (this apply's text) and, for a first apply, .txn.undo (the revert).
# Renaming .applied.sh.new to .applied.sh is the commit; until then .txn.undo, else .applied.sh,
# is what puts the host back (its output kept in memory: the disk may be full). Every failure to
# write this state (a full or read-only disk) ends the apply naming host, concern and config
# paths, with the host as it was: before .txn is written nothing has changed (txn_abort), after
# it the apply is undone (txn_exit); the commit writes what it must (the managers) before its
# rename. A transaction starts no process but the
# commit's mv and rm (and, on a first apply, the mkdir of the concern's directory and the cat
# that prints the revert): a process costs milliseconds of CPU, and every apply pays for these. A script run as an undo
# (MPTCP_PULUMI_UNDO set) begins no transaction, arms no rollback and forgets nothing; with
# MPTCP_PULUMI_LOCKED set it also takes no lock, because its caller holds it.

# undoing: true in a script run as an undo (by a failed apply, a recovery or a rollback).
undoing() { [ -n "${MPTCP_PULUMI_UNDO:-}" ]; }

# txn_undo SCRIPT: runs SCRIPT as an undo under our lock, its output in _out (in memory: an undo
# must not fail for want of room for its log).
txn_undo() { _out=$(MPTCP_PULUMI_UNDO=1 MPTCP_PULUMI_LOCKED=1 sh "$1" 2>&1); }

# txn_undo_script DIR: sets _u to what puts back the concern in DIR (its state directory).
txn_undo_script() { if [ -e "$1/.txn.undo" ]; then _u=$1/.txn.undo; else _u=$1/.applied.sh; fi; }

# txn_discard DIR: removes an undone transaction's files from the concern's directory DIR.
txn_discard() { rm -f "$1/.txn" "$1/.txn.undo" "$1/.applied.sh.new" "$1/.txn.log"; }

# txn_began DIR: prints when the transaction in DIR began (the time of its .txn).
txn_began() { date -u -r "$1/.txn" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "an unknown time"; }

# txn_begin CONCERN PATHS REVERT_FN: after the checks and the lock, before the first change:
# puts back any interrupted apply on the host, records what undoes this one (the last completed
# apply, else what REVERT_FN prints) and traps failure. PATHS: the keys of the host entry it applies.
txn_begin() {
  undoing && return 0
  [ -n "${MPTCP_PULUMI_SELF:-}" ] || die "internal error: this apply does not carry its own text (MPTCP_PULUMI_SELF)"
  txn_recover
  owner_check "$1"
  TXN=$1 TXN_AT=$2
  _d=$STATE_DIR/$1
  # until .txn is written, nothing has changed: a write that fails here says so
  trap 'txn_abort $?' EXIT
  state_dir "$_d"
  # (a revert cut short, then an apply: no longer a revert under way)
  [ ! -e "$_d/.reverting" ] || rm -f "$_d/.reverting"
  # (nor a revert of the anchor's under way: anchor.revert.sh)
  [ ! -e "$_d/.sweep.sh" ] || rm -f "$_d/.sweep.sh"
  [ -e "$_d/.applied.sh" ] || "$3" > "$_d/.txn.undo"
  printf '%s\n' "$MPTCP_PULUMI_SELF" > "$_d/.applied.sh.new"
  # last: with .txn present, what undoes this apply is complete
  owner_line > "$_d/.txn"
  trap 'txn_exit $?' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM
}

# txn_commit CONCERN: the apply completed: this host entry becomes one of the concern's managers
# (lib/owners.sh; first, while a failure to write, a full disk, still puts the host back), then
# its own text the last completed apply (the rename is the one step that commits). txn_recover
# finishes a commit cut short after the rename. A signal between the traps' removal and the
# rename ends the script, and the next apply or revert puts it back.
txn_commit() {
  undoing && return 0
  txn_own "$1"
  trap - EXIT HUP INT PIPE TERM
  mv "$STATE_DIR/$1/.applied.sh.new" "$STATE_DIR/$1/.applied.sh" || txn_exit 1
  rm -f "$STATE_DIR/$1/.txn" "$STATE_DIR/$1/.txn.undo" "$STATE_DIR/$1/.txn.log"
}

# txn_own CONCERN: makes the transaction's host entry (its .txn line) a manager of the concern.
txn_own() {
  _line=""
  read -r _line < "$STATE_DIR/$1/.txn" || true
  [ -z "$_line" ] || owner_set "$1" "$_line"
}

# txn_finish CONCERN: completes a committed transaction.
txn_finish() {
  txn_own "$1"
  rm -f "$STATE_DIR/$1/.txn" "$STATE_DIR/$1/.txn.undo" "$STATE_DIR/$1/.txn.log"
}

# txn_disown DIR: after the undo of a first apply (.txn.undo) in the concern's directory DIR: its
# host entry (the .txn line) is no manager, though its commit may have recorded it before failing.
# (An entry other than this script's, a rename's, stays: lib/owners.sh releases only its own.)
txn_disown() {
  [ -e "$1/.owners" ] || return 0
  _line=""
  read -r _line < "$1/.txn" || true
  [ "${_line%|*}" != "$STACK|$HOST" ] || owner_release "${1##*/}"
}

# txn_abort STATUS: the EXIT trap of an apply that failed while beginning its transaction (writing
# its state: a full or read-only disk), before any change: removes what it wrote and says so.
txn_abort() {
  trap - EXIT HUP INT TERM
  set +e
  [ "$1" != 0 ] || set -- 1
  _d=$STATE_DIR/$TXN
  rm -f "$_d/.txn" "$_d/.txn.undo" "$_d/.applied.sh.new" 2>/dev/null
  state_tidy "$_d"
  tmp_clean
  printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed before it changed anything (exit %s; the error is above): it could not write its state in %s (a full or read-only disk?). %s is as it was. Make room there, then run pulumi up again\n' "$HOST" "$TXN_AT" "$TXN" "$1" "$_d" "$HOST" >&2
  exit "$1"
}

# txn_exit STATUS: the EXIT trap of an apply that did not commit: undoes it and exits STATUS,
# saying what failed, on which host, for which config paths, and whether the host is back.
txn_exit() {
  _rc=$1
  trap - EXIT HUP INT TERM
  # the SSH session may be gone: writing to it must not stop the undo
  trap '' PIPE HUP
  set +e
  [ "$_rc" != 0 ] || _rc=1
  _d=$STATE_DIR/$TXN
  txn_undo_script "$_d"
  rb_disarm "$TXN" > /dev/null 2>&1
  if txn_undo "$_u"; then
    [ "$_u" != "$_d/.txn.undo" ] || txn_disown "$_d"
    txn_discard "$_d"
    state_tidy "$_d"
    tmp_clean
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above): %s was put back as it was before this apply began. Fix the cause and run pulumi up again\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" >&2
  else
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above), and putting %s back failed too (output below): the next apply or revert on %s tries again first; what it runs: %s\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" "$HOST" "$_u" >&2
    printf '%s\n' "$_out" | sed 's/^/  | /' >&2
    tmp_clean
  fi
  exit "$_rc"
}

# txn_recover: puts back every apply on this host that was killed before it committed or undid
# itself (finishing any commit cut short), naming each in RECOVERED; fails when one cannot be.
# Then removes what applies killed before their transaction began left (txn_debris).
txn_recover() {
  RECOVERED=""
  for _m in "$STATE_DIR"/*/.txn; do
    [ -e "$_m" ] || continue
    _d=${_m%/*}
    _c=${_d##*/}
    # the commit's rename happened
    [ -e "$_d/.applied.sh.new" ] || { txn_finish "$_c"; continue; }
    txn_undo_script "$_d"
    say "$_c: an apply that began at $(txn_began "$_d") was interrupted: putting it back first"
    rb_disarm "$_c" > /dev/null 2>&1 || true
    txn_undo "$_u" || die "$_c: an apply that began at $(txn_began "$_d") was interrupted, and putting it back fails: $(printf '%s\n' "$_out" | tail -n 3 | tr '\n' ' ')(what it runs: $_u). Fix that, then run pulumi up again"
    [ "$_u" != "$_d/.txn.undo" ] || txn_disown "$_d"
    txn_discard "$_d"
    # (the concern's directory only: this run goes on under the lock file)
    rmdir "$_d" 2>/dev/null || true
    RECOVERED="$RECOVERED $_c"
  done
  txn_debris
}

# txn_debris: an apply killed before its transaction began (no .txn) changed nothing, but may have
# left its concern's directory, its text and its undo: removed wherever the concern has no apply
# (completed or begun), no manager, no rollback record and no revert under way.
txn_debris() {
  for _d in "$STATE_DIR"/*; do
    [ -d "$_d" ] || continue
    if [ -e "$_d/.applied.sh" ] || [ -e "$_d/.txn" ] || [ -e "$_d/.owners" ] || [ -e "$_d/rolled-back" ] || [ -e "$_d/.reverting" ]; then continue; fi
    for _f in "$_d"/* "$_d"/.[!.]*; do
      case $_f in "$_d/.applied.sh.new" | "$_d/.txn.undo") ;; *) [ ! -e "$_f" ] || continue 2 ;; esac
    done
    rm -rf "$_d"
  done
}

# revert_begin CONCERN SAVED: starts a revert: puts back any interrupted apply first; when another
# host entry still manages the concern (a rename: lib/owners.sh), leaves the host to it and ends
# the script; else forgets the concern's last completed apply and its rollback files. When an
# undo (its rollback, or putting back its interrupted first apply) already reverted the concern
# (SAVED, what the revert restores from, is gone), nothing is left to do: says so and ends.
revert_begin() {
  if ! undoing; then
    TXN=$1
    trap 'revert_exit $?' EXIT
    txn_recover
    owner_release "$1"
    if [ -n "$_left" ]; then
      say "$1: still managed by $(printf '%s\n' "$_left" | awk -F'|' '{ printf("%s%s (stack %s)", (NR > 1 ? ", " : ""), $2, $1) }'): left as it is"
      exit 0
    fi
  fi
  # from here the revert may be cut short with the saved state half gone: .reverting says so, and
  # REVERT_RESUMED tells the next revert that what it finds missing was restored already
  REVERT_RESUMED=""
  if ! undoing && [ -d "$STATE_DIR/$1" ]; then
    if [ -e "$STATE_DIR/$1/.reverting" ]; then REVERT_RESUMED=1; else : > "$STATE_DIR/$1/.reverting"; fi
  fi
  rb_rolled_back "$1"
  rb_forget "$1"
  # and, not in an undo (these are its transaction's), what an apply killed before its
  # transaction began left
  if undoing; then rm -f "$STATE_DIR/$1/.applied.sh"; else rm -f "$STATE_DIR/$1/.applied.sh" "$STATE_DIR/$1/.applied.sh.new" "$STATE_DIR/$1/.txn.undo"; fi
  [ ! -e "$2" ] || return 0
  if [ -n "$_rolled" ]; then
    _by="its rollback at $_rolled"
  elif case " ${RECOVERED:-} " in *" $1 "*) true ;; *) false ;; esac; then
    _by="putting back its interrupted apply"
  elif [ -n "$REVERT_RESUMED" ] && ! state_left "$STATE_DIR/$1"; then
    _by="a revert that was cut short"
  else
    return 0
  fi
  state_tidy "$STATE_DIR/$1"
  say "$1: already restored by $_by"
  exit 0
}

# revert_exit STATUS: the EXIT trap of a revert: on failure says which, on which host, and that
# running it again (pulumi destroy) resumes it: what is left to restore stays recorded.
revert_exit() {
  tmp_clean
  [ "$1" != 0 ] || return 0
  printf 'mptcp-pulumi[%s]: error: %s: the %s revert failed (exit %s; the error is above): %s keeps part of what mptcp-pulumi applied, and %s still records what is left to restore: fix the cause and run pulumi destroy (or the revert) again\n' "$HOST" "$TXN" "$TXN" "$1" "$HOST" "$STATE_DIR/$TXN" >&2
}

# state_left DIR: DIR, a concern's state directory, holds more than the marks of a revert under way
# (.reverting, and the anchor's .sweep.sh) and an emptied files/ (lib/files.sh).
state_left() {
  for _f in "$1"/* "$1"/.[!.]*; do
    case $_f in
      "$1/.reverting" | "$1/.sweep.sh") continue ;;
      "$1/files") for _g in "$_f"/* "$_f"/.[!.]*; do [ ! -e "$_g" ] || return 0; done; continue ;;
    esac
    [ ! -e "$_f" ] || return 0
  done
  return 1
}
