# shellcheck shell=sh
# The host's anchor (anchor.apply.sh, anchor.revert.sh): what its delete needs besides the
# transactions (lib/txn.sh) and owners (lib/owners.sh).

# anchor_leftovers DIR: removes the files an apply killed before its transaction began left in a
# concern's directory DIR that no one manages (nothing on the host had changed), then DIR if empty.
anchor_leftovers() {
  rm -f "$1/.applied.sh.new" "$1/.txn.undo" "$1/.txn.log"
  rmdir "$1" 2>/dev/null || true
}

# anchor_revert_of APPLY: prints the revert an apply's text APPLY carries (its content_revert
# function's text: components/render.ts renderConcern); nothing when there is none.
anchor_revert_of() {
  [ ! -e "$1" ] || sed -n "/^content_revert() { cat <<'MPTCP_PULUMI_UNDO'\$/,/^MPTCP_PULUMI_UNDO\$/p" "$1" | sed '1d;$d'
}
