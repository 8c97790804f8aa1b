# Removes every rule and table route we added, restores rp_filter, puts back (or removes) every
# file and directory the hooks apply wrote, and has systemd-networkd read its configuration again
# (and stops networkd-dispatcher) where the apply made it.
need_ip
state_lock
d=$STATE_DIR/hooks
revert_begin hooks "$d/files"
state_need "interface hooks" "$d/files"
route_clear_recorded
rp_restore_all
if networkd_conf_recorded "$d"; then networkd_conf=1; else networkd_conf=""; fi
file_restore_all "$d"
dir_remove_created "$d"
systemd_reload
[ -z "$networkd_conf" ] || networkd_restart
dispatcher_stop "$d"
state_tidy "$d"
say "hooks removed"
