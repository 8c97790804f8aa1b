# Compares this host's live MPTCP state with the config, changing nothing (npm run check). Prints
# one line per difference, "KEY|WHAT DIFFERS" (lib/check.sh); a line "unapplied CONCERN" for each
# concern of the config this host entry has no completed apply of here, and "pending CONCERN" for
# each whose last apply here is not the one pulumi up would run now (lib/check.sh, chk_applies),
# "removed CONCERN" for each applied here that the config no longer sets (chk_removed), and a
# difference for a revert cut short (.reverting, lib/txn.sh) or an apply interrupted; and exits
# 0 whether or not anything differs. Lines "stack TEXT" say what else configures the host's
# network (lib/netstack.sh) and who makes its MPTCP endpoints. The checks of each concern the
# config sets follow (components/sh/CONCERN.check.sh).
if [ ! -d "$STATE_DIR" ]; then drift "" "mptcp-pulumi has not applied this host ($STATE_DIR is missing): run pulumi up"; fi
chk_applies
# shellcheck disable=SC2046 # interface names (validated by the config's schema), one argument each
{ netstack_report; nm_report_ifaces $(ep_ifaces); } | sed 's/^/stack /'
if [ "$ENDPOINT_OWNER" = networkmanager ]; then echo "stack MPTCP endpoints: NetworkManager's (endpointOwner: networkmanager): mptcp-pulumi leaves them alone"; fi
# shellcheck disable=SC2086 # UNSET_CONCERNS: concern names, split into words
chk_removed $UNSET_CONCERNS
for r in "$STATE_DIR"/*/.reverting; do
  [ -e "$r" ] || continue
  d=${r%/*}
  drift "${d##*/}" "a revert of ${d##*/} was cut short and the host is half restored: run pulumi destroy (or the pulumi up that removes it) again, which finishes it"
done
for t in "$STATE_DIR"/*/.txn; do
  d=${t%/*}
  # a transaction whose commit was cut short after its rename is finished, not put back
  [ -e "$d/.applied.sh.new" ] || continue
  drift "${d##*/}" "an apply of ${d##*/} that began at $(txn_began "$d") was interrupted and not put back yet: the next pulumi up puts it back first"
done
