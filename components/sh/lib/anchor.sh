# shellcheck shell=sh
# The host's anchor (anchor.apply.sh, anchor.revert.sh): what its delete needs besides the
# transactions (lib/txn.sh) and owners (lib/owners.sh).

# anchor_revert_of APPLY: prints the revert an apply's text APPLY carries (its content_revert
# function's text: components/render.ts renderConcern); nothing when there is none.
anchor_revert_of() {
  [ ! -e "$1" ] || sed -n "/^content_revert() { cat <<'MPTCP_PULUMI_UNDO'\$/,/^MPTCP_PULUMI_UNDO\$/p" "$1" | sed '1d;$d'
}
