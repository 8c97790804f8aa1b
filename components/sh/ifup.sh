# ifupdown sets IFACE, MODE, PHASE, ADDRFAM, METHOD and IF_<option> (IF_GATEWAY ...).
# Debian's NetworkManager bridge (dispatcher.d/01-ifupdown) runs this too, with
# METHOD=NetworkManager and ADDRFAM=inet or inet6: our dispatcher script handles those events.
case "${IFACE:-}" in ""|lo|--all) exit 0 ;; esac
[ "${METHOD:-}" != NetworkManager ] || exit 0
hook_sync "$IFACE" up "${IF_GATEWAY:-}"
