# shellcheck shell=sh
# systemd services made MPTCP by a drop-in we own (/etc/systemd/system/UNIT.d/DROPIN), never by
# editing the vendor unit (a package upgrade would undo that). The drop-in's name sorts after
# `systemctl edit`'s override.conf, so what it sets is applied last.

# svc_systemd: systemd is running this host, or a clear error.
svc_systemd() {
  if [ ! -d /run/systemd/system ] || ! command -v systemctl >/dev/null 2>&1; then
    die "services: systemd is not running on this host, and services are systemd units: remove services from this host's config"
  fi
}

# svc_version: systemd's version number, e.g. 252.
svc_version() { systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'; }

# svc_dropin_path UNIT: where our drop-in for UNIT lives.
svc_dropin_path() { echo "/etc/systemd/system/$1.d/$DROPIN"; }

# svc_wrap: the path of libmptcpwrap (Debian/Ubuntu package libmptcpwrap0, which mptcpize
# depends on; Fedora: mptcpd), or nothing.
svc_wrap() {
  for _lib in /usr/lib/*/mptcpize/libmptcpwrap.so.0 /usr/lib64/mptcpize/libmptcpwrap.so.0 /usr/lib/mptcpize/libmptcpwrap.so.0; do
    if [ -e "$_lib" ]; then echo "$_lib"; return 0; fi
  done
}

# svc_env UNIT VAR: the value VAR gets from the unit's Environment= lines, read from its files
# (`systemctl cat`) without our own drop-in, so a re-apply sees what the vendor and the admin set
# now. Values are parsed as systemd does: words, "double" or 'single' quotes, backslash escapes;
# an empty Environment= resets. (EnvironmentFile= is not read: see README.)
svc_env() {
  systemctl cat -- "$1" 2>/dev/null | awk -v want="$2" -v ours="$(svc_dropin_path "$1")" '
    /^# \// { skip = ($2 == ours); next }
    skip || /^[#;]/ { next }
    /^\[/ { section = $0; next }
    section != "[Service]" || !/^Environment=/ { next }
    {
      s = substr($0, 13); n = length(s); w = ""; q = ""; have = 0
      if (s ~ /^[ \t]*$/) { value = ""; next }
      for (i = 1; i <= n + 1; i++) {
        c = i <= n ? substr(s, i, 1) : " "
        if (c == "\\" && i < n) { i++; w = w substr(s, i, 1); have = 1; continue }
        if (q == "" && (c == "\"" || c == "\047")) { q = c; have = 1; continue }
        if (c == q) { q = ""; continue }
        if (q == "" && (c == " " || c == "\t")) {
          if (have && index(w, want "=") == 1) value = substr(w, length(want) + 2)
          w = ""; have = 0; continue
        }
        w = w c; have = 1
      }
    }
    END { printf "%s", value }'
}

# svc_quote VALUE: VALUE as one double-quoted systemd word (\ " and the specifier % escaped).
svc_quote() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/%/%%/g')"; }

# svc_check UNIT MODE: the unit exists on this host and its drop-in can be made (libmptcpwrap
# for preload, systemd >= 256 for socket), or a clear error.
svc_check() {
  _load=$(systemctl show -p LoadState --value -- "$1" 2>/dev/null || true)
  [ "$_load" = loaded ] || die "services[$1].unit: $1 is ${_load:-unknown} on this host (systemctl show -p LoadState $1): install the unit first, or fix the name"
  case $2 in
    preload)
      [ -n "$(svc_wrap)" ] || die "services[$1]: libmptcpwrap is not installed on this host, so $1 cannot be preloaded with it: install the mptcpize package (Debian/Ubuntu: apt-get install mptcpize; Fedora: dnf install mptcpd)" ;;
    socket)
      _v=$(svc_version)
      [ "${_v:-0}" -ge 256 ] || die "services[$1].mode: socket needs SocketProtocol=mptcp, which systemd ${_v:-?} on this host does not have (systemd >= 256 does): use mode preload on the .service this socket starts, or upgrade systemd" ;;
  esac
}

# svc_dropin UNIT MODE: prints the drop-in that makes UNIT's sockets MPTCP (after svc_check),
# keeping what the unit already sets: libmptcpwrap appended to its LD_PRELOAD, multipathtcp=1
# merged into its GODEBUG (replacing any multipathtcp setting), or SocketProtocol=mptcp in a
# socket unit.
svc_dropin() {
  printf '# Managed by mptcp-pulumi for host %s; pulumi destroy removes it.\n' "$HOST"
  case $2 in
    preload)
      _wrap=$(svc_wrap)
      _words=$(svc_env "$1" LD_PRELOAD | tr ':' ' ' | tr ' ' '\n' | grep -v -x -F -e "$_wrap" -e '' | tr '\n' ' ')
      printf '[Service]\nEnvironment=%s\n' "$(svc_quote "LD_PRELOAD=$_words$_wrap")" ;;
    godebug)
      _words=$(svc_env "$1" GODEBUG | tr ',' '\n' | grep -v -e '^multipathtcp=' -e '^$' | tr '\n' ',')
      printf '[Service]\nEnvironment=%s\n' "$(svc_quote "GODEBUG=${_words}multipathtcp=1")" ;;
    socket)
      printf '[Socket]\nSocketProtocol=mptcp\n' ;;
  esac
}

# svc_restart_all LINES: restarts each UNIT of the UNIT|POLICY lines whose POLICY is ifRunning and
# that is running, so its sockets are made again (with MPTCP, or after a revert without).
svc_restart_all() {
  printf '%s\n' "$1" | while IFS='|' read -r _unit _policy; do
    [ "$_policy" = ifRunning ] || continue
    systemctl is-active --quiet -- "$_unit" || continue
    systemctl restart -- "$_unit"
    say "$_unit restarted"
  done
}

# svc_release UNITDIR: puts back what stood at the drop-in path of the unit UNITDIR is named after,
# forgets the unit, and prints UNIT|POLICY for svc_restart_all (after the caller reloads systemd).
# A unit whose apply stopped before it recorded the drop-in path (in an undo), or whose path a
# revert cut short restored already (REVERT_RESUMED, lib/txn.sh), is only forgotten.
svc_release() {
  _unit=${1##*/}
  if [ -d "$1/files" ] || { ! undoing && [ -z "${REVERT_RESUMED:-}" ]; }; then
    state_need "the drop-in of $_unit" "$1/files"
    file_restore_all "$1"
    dir_remove_created "$1"
  fi
  echo "$_unit|$(cat "$1/restart" 2>/dev/null)"
  rm -f "$1/restart"
  [ ! -d "$1/files" ] || rmdir "$1/files"
  rmdir "$1"
}
