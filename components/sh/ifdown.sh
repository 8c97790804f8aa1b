# ifupdown runs this after an interface is deconfigured (see ifup.sh for the variables).
case "${IFACE:-}" in ""|lo|--all) exit 0 ;; esac
[ "${METHOD:-}" != NetworkManager ] || exit 0
hook_sync "$IFACE" down
