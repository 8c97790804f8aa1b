# Compares this host's live MPTCP state with the config, changing nothing (npm run check). Prints
# one line per difference, "CONFIG PATH|WHAT DIFFERS", and exits 0 whether or not anything differs.
# The checks of each concern the config sets follow (components/sh/CONCERN.check.sh).
if [ ! -d "$STATE_DIR" ]; then drift "$AT" "mptcp-pulumi has not applied this host ($STATE_DIR is missing): run pulumi up"; fi
