# Keeps NetworkManager off the MPTCP endpoints mptcp-pulumi owns on this host: a conf.d file of
# ours makes "disabled" the default connection.mptcp-flags (every later activation, reboot and
# netplan-made profile reads it), and the settings active now are switched too (`nmcli device
# modify`: NetworkManager removes the endpoints it made and leaves rp_filter as it found it). A
# profile with MPTCP flags of its own is refused. Without NetworkManager, nothing changes. Then
# reports the host's network stack (what else configures its interfaces).
d=$STATE_DIR/networkmanager
! nm_mptcp || nm_need_ours
state_lock
txn_begin networkmanager "endpointOwner" content_revert
[ -d "$d" ] || mkdir -p "$d"
if nm_mptcp; then
  state_keep "$d/present" echo yes
  [ -d "${NM_CONF%/*}" ] || dir_create "$d" "${NM_CONF%/*}"
  nm_conf_text
  # shellcheck disable=SC2154 # _nm_conf: set by nm_conf_text
  if ! file_has_text "$NM_CONF" "$_nm_conf"; then
    file_install "$d" "$NM_CONF" 644 "$_nm_conf"
    if nm_running; then
      # NetworkManager's endpoints as they are, ids included, for the revert to give back
      state_keep "$d/endpoints" ep_table
      nmcli general reload conf >/dev/null || die "nmcli general reload conf failed"
      nm_reapply_flags 0x1
      say "NetworkManager: MPTCP endpoint handling switched off on the active profiles"
    fi
    report networkmanager endpoints-off "$NM_CONF"
  else
    say "NetworkManager: already leaves MPTCP endpoints alone"
    report networkmanager endpoints-off "$NM_CONF"
  fi
else
  state_keep "$d/present" echo no
  if nm_present; then
    say "NetworkManager $(NetworkManager --version 2>/dev/null) has no MPTCP handling (1.40 and later have): nothing to switch off"
    report networkmanager no-mptcp-handling
  else
    say "NetworkManager is not installed: nothing to switch off"
    report networkmanager absent
  fi
fi
netstack_report | sed 's/^/network stack: /'
txn_commit networkmanager
