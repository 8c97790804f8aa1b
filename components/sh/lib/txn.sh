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
# is what puts the host back (its output in .txn.log). A transaction starts no process but the
# commit's mv and rm (and, on a first apply, the mkdir of the concern's directory and the cat
# that prints the revert): a process costs milliseconds of CPU, and every apply pays for these. A script run as an undo
# (MPTCP_PULUMI_UNDO set) begins no transaction, arms no rollback and forgets nothing; with
# MPTCP_PULUMI_LOCKED set it also takes no lock, because its caller holds it.

# undoing: true in a script run as an undo (by a failed apply, a recovery or a rollback).
undoing() { [ -n "${MPTCP_PULUMI_UNDO:-}" ]; }

# txn_undo SCRIPT LOG: runs SCRIPT as an undo under our lock, its output in LOG.
txn_undo() { MPTCP_PULUMI_UNDO=1 MPTCP_PULUMI_LOCKED=1 sh "$1" > "$2" 2>&1; }

# txn_undo_script DIR: sets _u to what puts back the concern in DIR (its state directory).
txn_undo_script() { if [ -e "$1/.txn.undo" ]; then _u=$1/.txn.undo; else _u=$1/.applied.sh; fi; }

# txn_discard DIR: removes an undone transaction's files from the concern's directory DIR.
txn_discard() { rm -f "$1/.txn" "$1/.txn.undo" "$1/.applied.sh.new" "$1/.txn.log"; }

# txn_began DIR: prints when the transaction in DIR began (the time of its .txn).
txn_began() { date -u -r "$1/.txn" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "an unknown time"; }

# txn_begin CONCERN PATHS REVERT_FN: after the checks and the lock, before the first change:
# puts back any interrupted apply on the host, records what undoes this one (the last completed
# apply, else what REVERT_FN prints) and traps failure. PATHS: the concern's config paths.
txn_begin() {
  undoing && return 0
  [ -n "${MPTCP_PULUMI_SELF:-}" ] || die "internal error: this apply does not carry its own text (MPTCP_PULUMI_SELF)"
  txn_recover
  owner_check "$1"
  TXN=$1 TXN_AT=$2
  _d=$STATE_DIR/$1
  [ -d "$_d" ] || mkdir -p "$_d"
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

# txn_commit CONCERN: the apply completed: its own text becomes the last completed apply (the
# rename is the one step that commits) and this host entry one of the concern's managers
# (lib/owners.sh). txn_recover finishes a commit cut short after the rename. A signal between
# the traps' removal and the rename ends the script, and the next apply or revert puts it back.
txn_commit() {
  undoing && return 0
  trap - EXIT HUP INT PIPE TERM
  mv "$STATE_DIR/$1/.applied.sh.new" "$STATE_DIR/$1/.applied.sh"
  txn_finish "$1"
}

# txn_finish CONCERN: completes a committed transaction.
txn_finish() {
  _d=$STATE_DIR/$1
  _line=""
  read -r _line < "$_d/.txn" || true
  [ -z "$_line" ] || owner_set "$1" "$_line"
  rm -f "$_d/.txn" "$_d/.txn.undo" "$_d/.txn.log"
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
  if txn_undo "$_u" "$_d/.txn.log"; then
    txn_discard "$_d"
    state_tidy "$_d"
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above): %s was put back as it was before this apply began. Fix the cause and run pulumi up again\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" >&2
  else
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above), and putting %s back failed too (output below): the next apply or revert on %s tries again first; what it runs: %s\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" "$HOST" "$_u" >&2
    sed 's/^/  | /' "$_d/.txn.log" >&2
  fi
  exit "$_rc"
}

# txn_recover: puts back every apply on this host that was killed before it committed or undid
# itself (finishing any commit cut short), naming each in RECOVERED; fails when one cannot be.
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
    txn_undo "$_u" "$_d/.txn.log" || die "$_c: an apply that began at $(txn_began "$_d") was interrupted, and putting it back fails: $(tail -n 3 "$_d/.txn.log" | tr '\n' ' ')(what it runs: $_u). Fix that, then run pulumi up again"
    txn_discard "$_d"
    RECOVERED="$RECOVERED $_c"
  done
}

# revert_begin CONCERN SAVED: starts a revert: puts back any interrupted apply first; when another
# host entry still manages the concern (a rename: lib/owners.sh), leaves the host to it and ends
# the script; else forgets the concern's last completed apply and its rollback files. When an
# undo (its rollback, or putting back its interrupted first apply) already reverted the concern
# (SAVED, what the revert restores from, is gone), nothing is left to do: says so and ends.
revert_begin() {
  if ! undoing; then
    txn_recover
    owner_release "$1"
    if [ -n "$_left" ]; then
      say "$1: still managed by $(printf '%s\n' "$_left" | awk -F'|' '{ printf("%s%s (stack %s)", (NR > 1 ? ", " : ""), $2, $1) }'): left as it is"
      exit 0
    fi
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
  else
    return 0
  fi
  state_tidy "$STATE_DIR/$1"
  say "$1: already restored by $_by"
  exit 0
}
