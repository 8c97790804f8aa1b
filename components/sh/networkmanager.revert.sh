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
    # 0x1 first: a device whose settings already say the profile's value would not rebuild them
    nm_reapply_flags 0x1 profile
  fi
fi
rm -f "$d/present"
state_tidy "$d"
say "NetworkManager settings restored"
