# Makes each unit in SERVICES (UNIT|MODE|RESTART per line) open MPTCP sockets through a
# drop-in we own, and puts back the units managed before but no longer in the config. systemd
# reloads once; a unit whose drop-in changed is restarted when it is running and its RESTART is
# ifRunning, so its sockets are made again. Everything is checked before anything changes.
svc_systemd
# 1. every unit exists and every drop-in can be made (libmptcpwrap, systemd version)
while IFS='|' read -r unit mode restart; do
  [ -n "$unit" ] || continue
  svc_check "$unit" "$mode"
done <<EOF
$SERVICES
EOF
state_lock
txn_begin services "services" content_revert
d=$STATE_DIR/services
# 2. write the drop-ins that differ, remembering what stood at each path before us
pending=""
while IFS='|' read -r unit mode restart; do
  [ -n "$unit" ] || continue
  u=$d/$unit
  path=$(svc_dropin_path "$unit")
  want=$(svc_dropin "$unit" "$mode")
  mkdir -p "$u"
  # (written only when it changes: an undo must be able to run on a full disk)
  file_has_text "$u/restart" "$restart" || state_write "$u/restart" echo "$restart"
  file_remember "$u" "$path"
  # (a regular file only: a symlink there is replaced, never written through)
  if file_has_text "$path" "$want"; then
    say "$unit: drop-in unchanged"
    continue
  fi
  dir_create "$u" "${path%/*}"
  file_install "$u" "$path" 644 "$want"
  pending="$pending$unit|$restart
"
done <<EOF
$SERVICES
EOF
# 3. units managed before but no longer in the config go back to what they were
for u in "$d"/*; do
  [ -d "$u" ] || continue
  printf '%s\n' "$SERVICES" | cut -d'|' -f1 | grep -qxF -e "${u##*/}" && continue
  pending="$pending$(svc_release "$u")
"
  say "${u##*/}: drop-in removed"
done
# 4. systemd reads the drop-ins again; changed units that run are restarted
if [ -n "$pending" ]; then
  systemctl daemon-reload
  svc_restart_all "$pending"
fi
state_tidy "$d"
while IFS='|' read -r unit mode restart; do
  [ -n "$unit" ] || continue
  active=$(systemctl is-active -- "$unit" || true)
  path=$(svc_dropin_path "$unit")
  say "$unit: $mode ($active): $(grep -v '^#' "$path" | tr '\n' ' ')"
  report service "$unit" "$mode" "$active" "$path"
done <<EOF
$SERVICES
EOF
txn_commit services
