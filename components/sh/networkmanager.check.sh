# networkmanager: our conf.d file, and no active profile with MPTCP flags of its own; the host's
# network stack as "stack LINE" lines.
if nm_mptcp; then
  nm_conf_text
  # shellcheck disable=SC2154 # _nm_conf: set by nm_conf_text
  printf '%s\n' "$_nm_conf" | chk_file "endpointOwner" "$NM_CONF" 644
  if nm_running; then
    while IFS='|' read -r dev name flags; do
      [ -z "$dev" ] || drift "endpointOwner" "NetworkManager profile '$name' on $dev sets connection.mptcp-flags $flags: NetworkManager manages MPTCP endpoints there (set it to 0, the default, or to disabled)"
    done <<EOF2
$(nm_profiles_foreign)
EOF2
  fi
fi
