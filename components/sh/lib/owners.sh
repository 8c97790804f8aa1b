# shellcheck shell=sh
# Who manages each concern on this host: STATE_DIR/CONCERN/.owners, one line per host entry whose
# apply of the concern completed, "STACK|HOST|TARGET" (STACK: the Pulumi project/stack, HOST: the
# entry's name, TARGET: user@address:port it connects to). Renaming an entry creates the new
# name's commands and deletes the old name's at the end of the same update: the old revert must
# then leave the host to the new name, so a revert restores the originals only when the last
# manager lets go. Another stack, or another entry of this stack that reaches this machine
# through another SSH target, is refused before anything changes.

# owner_check CONCERN: fails, naming who holds it, when another stack or another entry of this
# stack (through another SSH target) manages the concern here.
owner_check() {
  [ -e "$STATE_DIR/$1/.owners" ] || return 0
  while IFS='|' read -r _st _h _tg; do
    [ "$_st|$_h" != "$STACK|$HOST" ] || continue
    [ "$_st" = "$STACK" ] || die "this machine's $1 is managed by stack $_st (its host entry $_h, through $_tg), and two stacks must not manage one machine: each would undo the other. Remove it from one stack (pulumi destroy there, or drop the entry and pulumi up there), then pulumi up here"
    [ "$_tg" = "$TARGET" ] || die "this machine's $1 is managed by host entry $_h of this stack through $_tg, and $HOST reaches the same machine through $TARGET: two entries for one machine undo each other. Keep one entry (to rename an entry, keep its ssh settings unchanged in the same pulumi up)"
  done < "$STATE_DIR/$1/.owners"
}

# owner_has CONCERN: true when this host entry (STACK|HOST) has a completed apply of the concern
# here, which a revert has not let go of; with STACK empty (a drift check that could not tell the
# stack), when any entry has.
owner_has() {
  [ -e "$STATE_DIR/$1/.owners" ] || return 1
  [ -n "$STACK" ] || return 0
  while IFS='|' read -r _st _h _tg; do
    [ "$_st|$_h" != "$STACK|$HOST" ] || return 0
  done < "$STATE_DIR/$1/.owners"
  return 1
}

# owner_line: this host entry's line in an owners file.
owner_line() { printf '%s|%s|%s\n' "$STACK" "$HOST" "$TARGET"; }

# owner_set CONCERN LINE: makes LINE the only line of its entry (STACK|HOST) among the concern's
# owners, the file written whole (state_write). Every apply's commit calls it: where LINE is there
# already (a re-apply) it starts no process.
owner_set() {
  _f=$STATE_DIR/$1/.owners
  _entry=${2%|*}
  _same=0 _other=0
  if [ -e "$_f" ]; then
    while IFS= read -r _l; do
      [ "${_l%|*}" = "$_entry" ] || continue
      if [ "$_l" = "$2" ]; then _same=$((_same + 1)); else _other=1; fi
    done < "$_f"
  fi
  [ "$_same$_other" != 10 ] || return 0
  state_write "$_f" owner_lines "$_f" "$_entry" "$2"
}

# owner_lines FILE ENTRY LINE: prints the lines of FILE (if any) that are not ENTRY's
# ("STACK|HOST"), then LINE.
owner_lines() {
  if [ -e "$1" ]; then
    while IFS= read -r _l; do [ "${_l%|*}" = "$2" ] || printf '%s\n' "$_l"; done < "$1"
  fi
  printf '%s\n' "$3"
}

# owner_release CONCERN: this host entry lets go of the concern; sets _left to the managers left
# (their lines). Where none is left (the usual case) its one process is removing the file.
owner_release() {
  _f=$STATE_DIR/$1/.owners
  _left=""
  [ -e "$_f" ] || return 0
  _gone=0
  while IFS= read -r _l; do
    if [ "${_l%|*}" = "$STACK|$HOST" ]; then _gone=1; else _left="${_left:+$_left
}$_l"; fi
  done < "$_f"
  if [ -z "$_left" ]; then
    rm -f "$_f"
  elif [ "$_gone" = 1 ]; then
    state_write "$_f" lines "$_left"
  fi
}
