# shellcheck shell=sh
# Transactional applies. An apply that fails half-way (a command failing, the SSH session cut,
# the script terminated) puts the host back as it was before it began, and says so; one killed
# outright (no trap runs) is put back by the next apply or revert on the host, before it does
# anything else. "As it was" is the concern's last completed apply, which every apply keeps on
# the host as STATE_DIR/CONCERN/.applied.sh (its own text, MPTCP_PULUMI_SELF), run again; or,
# before any completed, the concern's revert. While an apply runs, STATE_DIR/CONCERN/.txn holds
# undo.sh (what puts the host back), began (when) and, after an undo, log; renaming it to
# .txn.done is the commit. A script run as an undo (MPTCP_PULUMI_UNDO set) begins no
# transaction, arms no rollback and forgets nothing; with MPTCP_PULUMI_LOCKED set it also takes
# no lock, because its caller holds it.

# undoing: true in a script run as an undo (by a failed apply, a recovery or a rollback).
undoing() { [ -n "${MPTCP_PULUMI_UNDO:-}" ]; }

# txn_undo DIR: runs DIR/undo.sh as an undo under our lock, its output in DIR/log.
txn_undo() { MPTCP_PULUMI_UNDO=1 MPTCP_PULUMI_LOCKED=1 sh "$1/undo.sh" > "$1/log" 2>&1; }

# txn_begin CONCERN PATHS REVERT_FN: after the checks and the lock, before the first change:
# puts back any interrupted apply on the host, records what undoes this one (the last completed
# apply, else what REVERT_FN prints) and traps failure. PATHS: the concern's config paths.
txn_begin() {
  undoing && return 0
  txn_recover
  owner_check "$1"
  TXN=$1 TXN_AT=$2
  _t=$STATE_DIR/$1/.txn
  mkdir -p "$_t"
  date -u +%Y-%m-%dT%H:%M:%SZ > "$_t/began"
  if [ -e "$STATE_DIR/$1/.applied.sh" ]; then cp "$STATE_DIR/$1/.applied.sh" "$_t/undo.sh.tmp"; else "$3" > "$_t/undo.sh.tmp"; fi
  mv "$_t/undo.sh.tmp" "$_t/undo.sh"
  trap 'txn_exit $?' EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM
}

# txn_commit CONCERN: the apply completed: its own text becomes the last completed apply and this
# host entry one of the concern's managers (lib/owners.sh). Renaming .txn is the one step that
# commits; txn_recover finishes a commit cut short after it.
txn_commit() {
  undoing && return 0
  [ -n "${MPTCP_PULUMI_SELF:-}" ] || die "internal error: this apply does not carry its own text (MPTCP_PULUMI_SELF)"
  _t=$STATE_DIR/$1/.txn
  printf '%s\n' "$MPTCP_PULUMI_SELF" > "$_t/applied.sh"
  owner_line > "$_t/owner"
  mv "$_t" "$_t.done"
  trap - EXIT HUP INT PIPE TERM
  txn_finish "$1"
}

# txn_finish CONCERN: completes a committed transaction.
txn_finish() {
  _d=$STATE_DIR/$1/.txn.done
  [ ! -e "$_d/applied.sh" ] || mv "$_d/applied.sh" "$STATE_DIR/$1/.applied.sh"
  [ ! -e "$_d/owner" ] || owner_set "$1" "$(cat "$_d/owner")"
  rm -rf "$_d"
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
  _t=$STATE_DIR/$TXN/.txn
  rb_disarm "$TXN" > /dev/null 2>&1
  if txn_undo "$_t"; then
    rm -rf "$_t"
    state_tidy "$STATE_DIR/$TXN"
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above): %s was put back as it was before this apply began. Fix the cause and run pulumi up again\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" >&2
  else
    printf 'mptcp-pulumi[%s]: error: %s: the %s apply failed (exit %s; the error is above), and putting %s back failed too (output below): the next apply or revert on %s tries again first; what it runs: %s/undo.sh\n' "$HOST" "$TXN_AT" "$TXN" "$_rc" "$HOST" "$HOST" "$_t" >&2
    sed 's/^/  | /' "$_t/log" >&2
  fi
  exit "$_rc"
}

# txn_recover: puts back every apply on this host that was killed before it committed or undid
# itself (finishing any commit cut short), naming each in RECOVERED; fails when one cannot be.
txn_recover() {
  RECOVERED=""
  for _t in "$STATE_DIR"/*/.txn.done "$STATE_DIR"/*/.txn; do
    [ -d "$_t" ] || continue
    _c=${_t%/*}
    _c=${_c##*/}
    case $_t in *.done) txn_finish "$_c"; continue ;; esac
    # killed before undo.sh was complete: nothing had changed yet
    [ -e "$_t/undo.sh" ] || { rm -rf "$_t"; continue; }
    say "$_c: an apply that began at $(cat "$_t/began" 2>/dev/null) was interrupted: putting it back first"
    rb_disarm "$_c" > /dev/null 2>&1 || true
    txn_undo "$_t" || die "$_c: an apply that began at $(cat "$_t/began" 2>/dev/null) was interrupted, and putting it back fails: $(tail -n 3 "$_t/log" | tr '\n' ' ')(what it runs: $_t/undo.sh). Fix that, then run pulumi up again"
    rm -rf "$_t"
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
    _left=$(owner_release "$1")
    if [ -n "$_left" ]; then
      say "$1: still managed by $(printf '%s\n' "$_left" | awk -F'|' '{ printf("%s%s (stack %s)", (NR > 1 ? ", " : ""), $2, $1) }'): left as it is"
      exit 0
    fi
  fi
  _rolled=$(rb_rolled_back "$1")
  rb_forget "$1"
  rm -f "$STATE_DIR/$1/.applied.sh"
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
