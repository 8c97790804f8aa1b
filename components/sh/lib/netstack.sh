# shellcheck shell=sh
# The host's network stack: what else configures its interfaces and MPTCP state
# (NetworkManager, netplan, dhcpcd, dhclient, systemd-networkd, networkd-dispatcher, mptcpd,
# ifupdown), and keeping NetworkManager off the MPTCP endpoints we own. NetworkManager (>= 1.40)
# adds a `subflow` endpoint for each address of every profile with a default route, sets
# rp_filter 1 -> 2, and on each activation or reapply deletes the other endpoints on its
# interfaces (ours too); with connection.mptcp-flags "disabled" (0x1) it does none of that.

# nm_present: NetworkManager is installed (nmcli and its configuration directory).
nm_present() { [ -d /etc/NetworkManager ] && command -v nmcli >/dev/null 2>&1; }

# nm_mptcp: NetworkManager is installed and has MPTCP handling (connection.mptcp-flags, 1.40 and
# later); older ones make no endpoints, and our conf.d file would be a key they do not know.
nm_mptcp() {
  nm_present || return 1
  _v=$(NetworkManager --version 2>/dev/null) || return 1
  _maj=${_v%%.*}
  _min=${_v#*.}
  _min=${_min%%.*}
  case "$_maj.$_min" in *[!0-9.]* | .* | *.) return 1 ;; esac
  [ "$_maj" -gt 1 ] || [ "$_min" -ge 40 ]
}

# nm_running: NetworkManager is running (nmcli reaches it).
nm_running() { [ "$(nmcli -t -f RUNNING general 2>/dev/null)" = running ]; }

# nm_devices: the devices on which NetworkManager has activated a profile of its own ("connected";
# not "connected (externally)", which it only watches), one per line, as it says now. Not one
# whose name nmcli could read as an option ("-e", "--help": a kernel allows such names; the
# device is passed bare), nor one with a ":" (escaped in nmcli's terse output): none can be an endpoint
# interface of the config.
nm_devices() {
  _o=$(nmcli -t -f DEVICE,STATE device 2>/dev/null) || return 0
  while IFS=: read -r _dev _state; do
    case $_dev in -* | *\\*) continue ;; esac
    [ "$_state" != connected ] || printf '%s\n' "$_dev"
  done <<EOF
$_o
EOF
}

# nm_profile DEVICE: sets _nm_name and _nm_flags to the name and the connection.mptcp-flags (as
# "0x..") of the profile active on DEVICE; false when none is.
nm_profile() {
  _nm_uuid=$(nmcli -g GENERAL.CON-UUID device show "$1" 2>/dev/null) || return 1
  [ -n "$_nm_uuid" ] || return 1
  _o=$(nmcli -g connection.id,connection.mptcp-flags connection show "$_nm_uuid" 2>/dev/null) || return 1
  { read -r _nm_name; read -r _nm_flags; } <<EOF
$_o
EOF
  # a profile's name is anyone's text: no field separator or line break of ours in messages
  case $_nm_name in *[!A-Za-z0-9\ ._@+-]*) _nm_name=$(printf '%s' "$_nm_name" | tr -c 'A-Za-z0-9 ._@+-' '?') ;; esac
  _nm_flags=${_nm_flags%% *}
}

# nm_profiles: sets _nm_profiles to one line "DEVICE|PROFILE|FLAGS" per device with an active
# profile (nm_devices, nm_profile). Asks NetworkManager once per run: the refusal, the reapply and
# the report all read these lines.
nm_profiles() {
  [ -z "${_nm_profiles_seen:-}" ] || return 0
  _nm_profiles_seen=1
  _nm_profiles=""
  set -f
  for _dev in $(nm_devices); do
    nm_profile "$_dev" || continue
    _nm_profiles="$_nm_profiles$_dev|$_nm_name|$_nm_flags
"
  done
  set +f
}

# nm_flags_ours FLAGS: NetworkManager leaves endpoints to us under these profile flags: the default
# (0, which our conf.d file makes "disabled") or "disabled" itself (0x1 set).
nm_flags_ours() { [ $(($1)) -eq 0 ] || [ $(($1 & 1)) -eq 1 ]; }

# nm_profiles_foreign: the lines of nm_profiles whose profile sets MPTCP flags of its own (neither
# default nor disabled): NetworkManager manages endpoints there whatever our conf.d file says.
nm_profiles_foreign() {
  nm_profiles
  while IFS='|' read -r _dev _name _flags; do
    [ -z "$_dev" ] || nm_flags_ours "$_flags" || printf '%s|%s|%s\n' "$_dev" "$_name" "$_flags"
  done <<EOF
$_nm_profiles
EOF
}

# nm_need_ours: fails, naming each profile and the way out, when an active profile sets MPTCP
# flags of its own (nm_profiles_foreign).
nm_need_ours() {
  nm_running || return 0
  _foreign=$(nm_profiles_foreign)
  [ -n "$_foreign" ] || return 0
  _msg=""
  while IFS='|' read -r _dev _name _flags; do
    _msg="$_msg profile '$_name' on $_dev sets connection.mptcp-flags $_flags;"
  done <<EOF
$_foreign
EOF
  die "endpointOwner: NetworkManager manages MPTCP endpoints here:$_msg a profile's own flags win over mptcp-pulumi's default. Set them back to the default (nmcli connection modify PROFILE connection.mptcp-flags 0) or to disabled, or leave this host's endpoints to NetworkManager (endpointOwner: networkmanager, and no endpoints in the config)"
}

# nm_conf_text: sets _nm_conf to our conf.d file's text.
nm_conf_text() {
  _nm_conf="# mptcp-pulumi: this host's MPTCP endpoints belong to mptcp-pulumi, so NetworkManager
# adds, deletes and re-flags none, and leaves rp_filter alone, for every profile whose
# connection.mptcp-flags is at its default. pulumi destroy removes this file.
[connection-mptcp-pulumi]
connection.mptcp-flags=0x1"
}

# nm_reapply_flags FLAGS...: on each device with an active profile (nm_profiles), sets the MPTCP
# flags of the active settings (not the profile on disk) to each FLAGS in turn (`nmcli device
# modify`, a reapply that keeps addresses and routes); "profile" is the profile's own value.
# NetworkManager reads its default only when it builds a device's settings, which a plain reapply
# does not.
nm_reapply_flags() {
  nm_profiles
  while IFS='|' read -r _dev _name _flags; do
    [ -n "$_dev" ] || continue
    for _f in "$@"; do
      [ "$_f" != profile ] || _f=$_flags
      nmcli device modify "$_dev" connection.mptcp-flags "$_f" >/dev/null 2>&1 && continue
      # a device that went down meanwhile (a Wi-Fi roam) reads the default when it comes back
      ! nm_devices | grep -qx -- "$_dev" || die "nmcli device modify $_dev connection.mptcp-flags $_f failed"
      say "NetworkManager: $_dev is no longer active: it reads the default connection.mptcp-flags at its next activation"
      break
    done
  done <<EOF
$_nm_profiles
EOF
}

# nm_endpoints_restore FILE: adds each endpoint line of FILE (ep_table's form) whose address has no
# endpoint now. One that cannot be added is left to NetworkManager, which adds it under a new id.
nm_endpoints_restore() {
  _now=$(ep_table)
  while read -r _a _rest; do
    [ -n "$_a" ] || continue
    case "
$_now" in *"
$_a "*) continue ;; esac
    set -f
    # shellcheck disable=SC2086 # a line is the argument list, split on purpose (globbing is off)
    ip mptcp endpoint add "$_a" $_rest 2>/dev/null || true
    set +f
  done < "$1"
}

# netstack_report: one line per network manager found on the host, what it is and does here.
netstack_report() {
  if nm_present; then
    _v=$(NetworkManager --version 2>/dev/null || echo "?")
    if nm_running; then
      nm_profiles
      _devs=""
      while IFS='|' read -r _dev _name _flags; do
        [ -z "$_dev" ] || _devs="$_devs $_dev (profile '$_name', connection.mptcp-flags $_flags)"
      done <<EOF
$_nm_profiles
EOF
      _mptcp=$(NetworkManager --print-config 2>/dev/null | awk -F= '$1 == "connection.mptcp-flags" { v = $2 } END { print v }')
      echo "NetworkManager $_v, running; profiles active on:${_devs:- none}; default connection.mptcp-flags ${_mptcp:-unset (enabled,subflow)}"
    else
      echo "NetworkManager $_v, not running"
    fi
    _np=""
    for _f in /etc/netplan/*.yaml; do [ -e "$_f" ] && _np="$_np ${_f##*/}"; done
    [ -z "$_np" ] || echo "netplan:$_np"
  fi
  if command -v dhcpcd >/dev/null 2>&1; then echo "dhcpcd $(dhcpcd --version 2>/dev/null | head -n 1 | awk '{ print $NF }')$(netstack_active dhcpcd)"; fi
  if command -v dhclient >/dev/null 2>&1; then echo "dhclient$(netstack_proc dhclient)"; fi
  if [ -e /lib/systemd/systemd-networkd ] || [ -e /usr/lib/systemd/systemd-networkd ]; then echo "systemd-networkd$(netstack_active systemd-networkd)"; fi
  if command -v networkd-dispatcher >/dev/null 2>&1; then echo "networkd-dispatcher$(netstack_active networkd-dispatcher)"; fi
  if [ -e /usr/libexec/mptcpd ] || command -v mptcpd >/dev/null 2>&1; then
    mptcpd_found
    if [ -n "$_mptcpd" ]; then echo "mptcpd installed, and it manages MPTCP here (lib/mptcpd.sh)"; else echo "mptcpd installed, not enabled and not running"; fi
  fi
  if command -v ifup >/dev/null 2>&1; then echo "ifupdown"; fi
}

# nm_report_ifaces IFACE...: a line saying whether NetworkManager manages each IFACE (the endpoint
# interfaces), where it runs. Only the check reports it: in the apply's report the endpoint list
# would change its text, and so run it again, with every endpoint change.
nm_report_ifaces() {
  [ $# -gt 0 ] && nm_present && nm_running || return 0
  _o=$(nmcli -t -f DEVICE,STATE device 2>/dev/null) || true
  _eps=""
  for _i in "$@"; do
    _st="not a NetworkManager device"
    while IFS=: read -r _dev _state; do [ "$_dev" != "$_i" ] || _st=$_state; done <<EOF
$_o
EOF
    _eps="$_eps $_i ($_st)"
  done
  echo "NetworkManager on the endpoint interfaces:$_eps"
}

# netstack_active UNIT: ", active" or ", inactive" as systemd sees UNIT (nothing without systemd).
netstack_active() {
  [ -d /run/systemd/system ] || return 0
  printf ', %s' "$(systemctl is-active "$1" 2>/dev/null || true)"
}

# netstack_proc NAME: ", running" when a process of that name runs.
netstack_proc() { if pgrep -x "$1" >/dev/null 2>&1; then printf ', running'; fi; }
