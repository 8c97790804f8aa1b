# Run after every other command of this host entry was deleted (pulumi destroy, or the entry
# leaving the config): reverts what of this entry is still applied here although Pulumi held no
# command for it. The engine records a command only when it succeeds, so an apply that committed
# on the host but whose command failed (the SSH session cut right after the commit, the command
# killed) has no delete of its own. Every apply carries its concern's revert and keeps its own
# text on the host (STATE_DIR/CONCERN/.applied.sh, lib/txn.sh): that revert is what runs here,
# kept as STATE_DIR/CONCERN/.sweep.sh until it completes, so a run cut short is finished by the
# next. An apply killed before it committed is put back first (txn_recover). Fails, naming each,
# when something of this entry stays: destroy never reports success over a host that still
# carries our changes.
if [ ! -d "$STATE_DIR" ]; then
  say "nothing of host entry $HOST is applied here"
  exit 0
fi
state_lock
txn_recover
for c in $SWEEP_ORDER; do
  d=$STATE_DIR/$c
  [ -d "$d" ] || continue
  if [ -e "$d/.sweep.sh" ] && ! state_left "$d" && [ ! -e "$d/.reverting" ]; then
    # a revert of ours that completed, cut short before it forgot its text
    rm -f "$d/.sweep.sh"
    rmdir "$d" 2>/dev/null || true
    continue
  elif [ -e "$d/.sweep.sh" ]; then
    # a revert of ours cut short (its revert removed the apply's text early): finish it
    r=$(cat "$d/.sweep.sh")
    say "$c: finishing its revert, cut short by an earlier run"
  elif owner_has "$c" && [ ! -e "$d/.applied.sh" ] && [ -e "$d/rolled-back" ]; then
    # a first apply its rollback undid (the revert, run as an undo, keeps the managers): restored
    rb_rolled_back "$c"
    # shellcheck disable=SC2154 # _rolled: set by rb_rolled_back
    when=$_rolled
    owner_release "$c"
    rb_forget "$c"
    state_tidy "$d"
    [ ! -d "$d" ] || die "$c: the apply of $c that its rollback undid at $when left state in $d: look at it, put the $c back by hand if needed, remove it, then run pulumi destroy again"
    say "$c: already restored by its rollback at $when"
    continue
  elif owner_has "$c"; then
    r=$(anchor_revert_of "$d/.applied.sh")
    [ -n "$r" ] || die "$c: $HOST still carries an apply of $c by this host entry that Pulumi holds no command for, and no revert of it was found in $d/.applied.sh: put the $c back by hand"
    # kept until it completes, so a run cut short is finished by the next
    state_write "$d/.sweep.sh" printf '%s\n' "$r"
    say "$c: still applied here although Pulumi held no command for it (an apply that completed on $HOST after its command failed): reverting it"
  else
    # not this entry's (what an apply killed before its transaction began left went with
    # txn_recover's txn_debris)
    continue
  fi
  MPTCP_PULUMI_LOCKED=1 sh -c "$r" sh || die "$c: reverting the $c that Pulumi held no command for failed (output above): $HOST still carries it. Fix the cause and run pulumi destroy again"
  rm -f "$d/.sweep.sh"
  rmdir "$d" 2>/dev/null || true
done
left=""
for c in $SWEEP_ORDER; do if owner_has "$c"; then left="$left $c"; fi; done
[ -z "$left" ] || die "$HOST still carries this host entry's$left after their reverts"
if rmdir "$STATE_DIR" 2>/dev/null; then rm -f "$LOCK_FILE"; fi
say "nothing of host entry $HOST is applied here"
