# Removes every service drop-in we wrote (putting back anything that stood at its path before),
# reloads systemd, and restarts the units that run (RESTART ifRunning), so their sockets are
# plain TCP again.
svc_systemd
state_lock
d=$STATE_DIR/services
revert_begin services "$d"
state_need "service drop-ins" "$d"
pending=""
for u in "$d"/*; do
  [ -d "$u" ] || continue
  pending="$pending$(svc_release "$u")
"
done
systemctl daemon-reload
svc_restart_all "$pending"
state_tidy "$d"
say "service drop-ins removed"
