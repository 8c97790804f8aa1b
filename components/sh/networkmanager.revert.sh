# Puts back what stood at our NetworkManager conf.d file's path before, and lets NetworkManager
# manage MPTCP endpoints again on the active profiles as their settings say (it re-adds the
# endpoints it had made).
state_lock
d=$STATE_DIR/networkmanager
revert_begin networkmanager "$d/present"
state_need "NetworkManager settings" "$d/present"
if [ -d "$d/files" ]; then
  file_restore_all "$d"
  dir_remove_created "$d"
  if nm_present && nm_running; then
    nmcli general reload conf >/dev/null || die "nmcli general reload conf failed"
    # its endpoints back with their ids first: NetworkManager keeps an endpoint it finds as it
    # wants it, where it would add a new one under the kernel's next id
    [ ! -e "$d/endpoints" ] || nm_endpoints_restore "$d/endpoints"
    # 0x1 first: a device whose settings already say the profile's value would not rebuild them
    nm_reapply_flags 0x1 profile
  fi
fi
rm -f "$d/present" "$d/endpoints"
state_tidy "$d"
say "NetworkManager settings restored"
