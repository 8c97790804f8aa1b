# shellcheck shell=sh
# ip mptcp limits. The host's limits before our first apply are saved in one file,
# STATE_DIR/limits/orig, as "SUBFLOWS ADD_ADDR_ACCEPTED": only limits_save writes it and only
# limits_orig reads it.

# limits_read: sets sf and aa from `ip mptcp limits show` ("add_addr_accepted 0 subflows 2").
# Text, because iproute2 6.1 prints this same text for `ip -j mptcp limits show`.
limits_read() {
  sf="" aa=""
  # shellcheck disable=SC2046 # the words of the output are the pairs to walk
  set -- $(ip mptcp limits show)
  while [ $# -ge 2 ]; do
    case $1 in subflows|subflow) sf=$2 ;; add_addr_accepted) aa=$2 ;; esac
    shift 2
  done
  if [ -z "$sf" ] || [ -z "$aa" ]; then die "cannot read ip mptcp limits (got: $(ip mptcp limits show))"; fi
}

# limits_set SUBFLOWS ADD_ADDR_ACCEPTED: changes the kernel only where it differs from sf and aa
# (the callers' limits_read).
limits_set() {
  if [ "$sf" != "$1" ] || [ "$aa" != "$2" ]; then
    ip mptcp limits set subflows "$1" add_addr_accepted "$2"
    say "limits: subflows $1 add_addr_accepted $2"
  fi
}

# limits_save: saves the host's current limits (also left in sf and aa) as its original, once.
limits_save() {
  limits_read
  state_keep "$STATE_DIR/limits/orig" printf '%s %s\n' "$sf" "$aa"
}

# limits_orig: sets osf and oaa from the saved original.
limits_orig() { read -r osf oaa < "$STATE_DIR/limits/orig"; }

# limits_apply: the config's limits (SUBFLOWS, ADD_ADDR_ACCEPTED); one the config leaves unset
# (empty) is held at the host's original. After limits_read or limits_save (sf and aa: the
# current limits). Refused where mptcpd runs (lib/mptcpd.sh).
limits_apply() {
  mptcpd_refuse "limits"
  if [ -n "$SUBFLOWS" ] && [ -n "$ADD_ADDR_ACCEPTED" ]; then
    limits_set "$SUBFLOWS" "$ADD_ADDR_ACCEPTED"
  else
    limits_orig
    limits_set "${SUBFLOWS:-$osf}" "${ADD_ADDR_ACCEPTED:-$oaa}"
  fi
}

# limits_restore: puts back the saved original limits, and forgets them.
limits_restore() {
  limits_orig
  limits_read
  limits_set "$osf" "$oaa"
  rm -f "$STATE_DIR/limits/orig"
}
