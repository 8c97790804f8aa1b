# Removes every rule and table route we added, restores rp_filter, and puts back (or removes)
# every file and directory the hooks apply wrote.
need_ip
state_lock
d=$STATE_DIR/hooks
rolled=$(rb_rolled_back hooks)
rb_forget hooks
# the rollback of a first apply was this revert: nothing is left to restore
if [ -n "$rolled" ] && [ ! -e "$d/files" ]; then
  state_tidy "$d"
  say "hooks: already removed by the rollback"
  exit 0
fi
state_need "interface hooks" "$d/files"
route_clear_recorded
rp_restore_all
file_restore_all "$d"
dir_remove_created "$d"
systemd_reload
state_tidy "$d"
say "hooks removed"
