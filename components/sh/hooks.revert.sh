# Removes every rule and table route we added, restores rp_filter, and puts back (or removes)
# every file and directory the hooks apply wrote.
need_ip
state_lock
d=$STATE_DIR/hooks
revert_begin hooks "$d/files"
state_need "interface hooks" "$d/files"
route_clear_recorded
rp_restore_all
file_restore_all "$d"
dir_remove_created "$d"
systemd_reload
state_tidy "$d"
say "hooks removed"
