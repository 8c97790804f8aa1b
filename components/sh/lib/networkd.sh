# shellcheck shell=sh
# systemd-networkd and networkd-dispatcher, where they run: networkd reads our networkd.conf
# drop-in (NETWORKD_CONF) only when it starts, and networkd-dispatcher's unit starts only once a
# script exists in its directories (ConditionPathExistsGlob), which ours may be the first of.

# networkd_restart: restarts systemd-networkd if it runs, so it reads networkd.conf again (`networkctl reload` reads only .network and .netdev files); links keep their addresses and routes.
networkd_restart() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
  systemctl -q is-active systemd-networkd.service || return 0
  if ! systemctl restart systemd-networkd.service; then
    # it ran before: one more start, so a failed start does not leave the host without it
    say "systemd-networkd did not start again: $(networkd_log)"
    systemctl reset-failed systemd-networkd.service 2>/dev/null || true
    systemctl start systemd-networkd.service || die "systemctl restart systemd-networkd.service failed twice: systemd-networkd does not run now ($(networkd_log))"
  fi
  say "restarted systemd-networkd (it reads $NETWORKD_CONF at start)"
}

# networkd_log: systemd-networkd's last lines in the journal, on one line.
networkd_log() { journalctl -u systemd-networkd.service -n 6 --no-pager -o cat 2>/dev/null | tr '\n' ' ' || true; }

# networkd_conf_recorded DIR: whether the hooks apply recorded NETWORKD_CONF in DIR (it wrote it).
networkd_conf_recorded() {
  [ -e "$1/files$NETWORKD_CONF.orig" ] || [ -e "$1/files$NETWORKD_CONF.absent" ]
}

# dispatcher_start DIR: starts networkd-dispatcher where it is enabled and not running while systemd-networkd runs, without waiting (at start it runs the hooks, which wait for our lock), recording in DIR that we did.
dispatcher_start() {
  [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1 || return 0
  systemctl -q is-active systemd-networkd.service && systemctl -q is-enabled networkd-dispatcher.service 2>/dev/null || return 0
  ! systemctl -q is-active networkd-dispatcher.service || return 0
  systemctl start --no-block networkd-dispatcher.service || die "systemctl start networkd-dispatcher.service failed: our hooks in /etc/networkd-dispatcher do not run (see journalctl -u networkd-dispatcher)"
  : > "$1/started-networkd-dispatcher"
  say "started networkd-dispatcher (its unit waits for a first script, ours)"
}

# dispatcher_stop DIR: stops networkd-dispatcher if dispatcher_start started it and no script is left for it (its unit would not start at boot either).
dispatcher_stop() {
  [ -e "$1/started-networkd-dispatcher" ] || return 0
  rm -f "$1/started-networkd-dispatcher"
  for _s in /etc/networkd-dispatcher/*/* /usr/lib/networkd-dispatcher/*/*; do [ ! -e "$_s" ] || return 0; done
  systemctl stop networkd-dispatcher.service || true
}

# chk_networkd: where our drop-in is installed, what systemd-networkd reads in the end (its
# configuration with the drop-ins in its order, `systemd-analyze cat-config`) keeps both
# ManageForeign settings at "no": a drop-in read after ours that says otherwise is reported.
chk_networkd() {
  [ -e "$NETWORKD_CONF" ] && command -v systemd-analyze >/dev/null 2>&1 || return 0
  systemd-analyze cat-config systemd/networkd.conf 2>/dev/null | awk -v at=hooks '
    /^# \// { file = substr($0, 3); next }
    /^[[:space:]]*ManageForeign(RoutingPolicyRules|Routes)[[:space:]]*=/ {
      split($0, kv, "="); key = kv[1]; val = kv[2]; gsub(/[[:space:]]/, "", key); gsub(/[[:space:]]/, "", val)
      v[key] = val; f[key] = file
    }
    END {
      for (k in v) if (v[k] != "no") printf "%s|systemd-networkd reads %s=%s last, in %s (after ours): it deletes our rules and routes whenever it configures a link; remove that setting, or name that file to sort before ours\n", at, k, v[k], f[k]
    }'
}
