# Removes every rule and table route we added, restores rp_filter, and puts back (or removes)
# every file and directory the hooks apply wrote.
need_ip
state_lock
d=$STATE_DIR/hooks
if [ -d "$d" ]; then
  route_clear_recorded
  rp_restore_all
  file_restore_all "$d"
  dir_remove_created "$d"
  systemd_reload
fi
state_tidy "$d"
say "hooks removed"
