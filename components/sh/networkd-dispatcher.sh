# networkd-dispatcher runs the scripts in /etc/networkd-dispatcher/STATE.d/ when a link enters
# STATE (networkd's operational or administrative states), with IFACE and STATE in the
# environment, one script at a time. routable (the link has a routable address again: at boot,
# after a carrier loss, `networkctl reconfigure`), configured (networkd has finished: addresses
# and routes in) and degraded (only link-local addresses left): a re-sync, `change`, which leaves
# what is right alone. Not `up`: networkd-dispatcher also runs routable.d for every routable link
# whenever it starts (at boot, at our apply, at a package upgrade), and re-creating endpoints
# there would close live subflows. After a carrier loss the endpoints come back announced anyway:
# no-carrier and off (the path is gone) removed them. An address change that leaves the state as
# it was (a DHCP renewal with another address) reaches no script: the next state change or the
# boot unit catches it up.
case "${IFACE:-}" in ""|lo) exit 0 ;; esac
case "${STATE:-}" in
  routable|configured|degraded) hook_sync "$IFACE" change ;;
  no-carrier|off) hook_sync "$IFACE" down ;;
esac
