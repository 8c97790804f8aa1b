# networkd-dispatcher runs the scripts in /etc/networkd-dispatcher/STATE.d/ when a link enters
# STATE (networkd's operational or administrative states), with IFACE and STATE in the
# environment, one script at a time. routable: the link has a routable address again (at boot,
# after a carrier loss, `networkctl reconfigure`, which re-adds the addresses): its endpoints are
# re-created, so peers hear them announced again. configured: networkd has finished (addresses
# and routes in), and degraded: only link-local addresses are left: a re-sync. no-carrier and
# off: the path is gone. An address change that leaves the state as it was (a DHCP renewal with
# another address) reaches no script: the next state change or the boot unit catches it up.
case "${IFACE:-}" in ""|lo) exit 0 ;; esac
case "${STATE:-}" in
  routable) hook_sync "$IFACE" up ;;
  configured|degraded) hook_sync "$IFACE" change ;;
  no-carrier|off) hook_sync "$IFACE" down ;;
esac
