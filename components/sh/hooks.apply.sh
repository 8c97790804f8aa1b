# Installs the entry point, the interface hooks, the boot unit and systemd-networkd's drop-in
# (FILES: PATH|MODE|ONLY IN THIS DIRECTORY|FUNCTION PRINTING THE CONTENT per line; a hook only
# where its subsystem is present), enables the unit, has systemd-networkd and networkd-dispatcher
# take up what changed, then applies every interface's routing through the entry point.
need_ip
state_lock
txn_begin hooks "hooks, routing" content_revert
d=$STATE_DIR/hooks
# anything to change (files, unit, routing)? then arm the rollback first (lib/rollback.sh)
files_differ
if [ -n "$_differ" ] || [ -n "$(chk_hooks_in_place)" ]; then rb_arm hooks content_revert; fi
state_dir "$d"
# the files that differ (lib/check.sh), each written whole and renamed into place (in a
# directory of ours where the subsystem has none yet); beside every one, what a run that died
# while writing it left is removed first (a hook runner must never find it)
# shellcheck disable=SC2034 # sum: a field of FILES used by files_differ
while IFS='|' read -r path mode only content sum; do
  file_sweep "$path"
  in_differ "$path" || continue
  [ -d "${path%/*}" ] || dir_create "$d" "${path%/*}"
  file_put "$d" "$path" "$mode" "$content"
done <<EOF
$FILES
EOF
# systemd reads the unit files again only if ours changed (or its link, see unit_enable)
if in_differ "/etc/systemd/system/$UNIT_NAME"; then unit_changed=1; else unit_changed=""; fi
unit_enable "$d" "$unit_changed"
# systemd-networkd reads its drop-in only at start; networkd-dispatcher may wait for a first script
if in_differ "$NETWORKD_CONF"; then networkd_restart; fi
case "$_differ" in *"/etc/networkd-dispatcher/"*) dispatcher_start "$d" ;; esac
# the entry point applies the routing of every interface, under our lock
MPTCP_PULUMI_LOCKED=1 "$MPTCP_PULUMI_SYNC" apply
say "hooks installed"
# shellcheck disable=SC2034 # the fields of FILES other than the path
while IFS='|' read -r path mode only content sum; do [ -z "$path" ] || report hook "$path"; done <<EOF
$FILES
EOF
# shellcheck disable=SC2154 # rt_mode, rt_table, rt_prio, rt_gw: set by route_resolve
for i in $(printf '%s\n' "$ROUTING" | cut -d'|' -f1); do
  if route_resolve "$i"; then report route "$i" "$rt_mode" "$rt_table" "$rt_prio" ${rt_gw:+"$rt_gw"}; fi
done
rb_settle hooks
txn_commit hooks
