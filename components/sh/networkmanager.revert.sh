# Puts back what stood at our NetworkManager conf.d file's path before, and lets NetworkManager
# manage MPTCP endpoints again on the active profiles as their settings say (it re-adds the
# endpoints it had made).
state_lock
d=$STATE_DIR/networkmanager
revert_begin networkmanager "$d/present"
state_need "NetworkManager settings" "$d/present"
# our file's path first; NetworkManager's part then, marked pending until it has succeeded, so a
# revert cut short there does it again
if [ -d "$d/files" ]; then
  : > "$d/pending"
  file_restore_all "$d"
  dir_remove_created "$d"
fi
if [ -e "$d/pending" ]; then
  # its endpoints back with their ids first (whether it runs now or not): NetworkManager keeps an
  # endpoint it finds as it wants it, where it would add a new one under the kernel's next id
  [ ! -e "$d/endpoints" ] || nm_endpoints_restore "$d/endpoints"
  if nm_present && nm_running; then
    nmcli general reload conf >/dev/null || die "nmcli general reload conf failed"
    # 0x1 first: a device whose settings already say the profile's value would not rebuild them
    nm_reapply_flags 0x1 profile
  fi
  rm -f "$d/pending"
fi
rm -f "$d/present" "$d/endpoints"
state_tidy "$d"
say "NetworkManager settings restored"
