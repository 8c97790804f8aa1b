# Compares this host's live MPTCP state with the config, changing nothing (npm run check). Prints
# one line per difference, "CONFIG PATH|WHAT DIFFERS", and exits 0 whether or not anything differs.
# The checks of each concern the config sets follow (components/sh/CONCERN.check.sh).
if [ ! -d "$STATE_DIR" ]; then drift "$AT" "mptcp-pulumi has not applied this host ($STATE_DIR is missing): run pulumi up"; fi
for t in "$STATE_DIR"/*/.txn; do
  [ -e "$t/undo.sh" ] || continue
  c=${t%/*}
  c=${c##*/}
  drift "$AT.$c" "an apply of $c that began at $(cat "$t/began" 2>/dev/null) was interrupted and not put back yet: the next pulumi up puts it back first"
done
