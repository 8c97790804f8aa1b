# ifupdown sets IFACE, MODE, PHASE, ADDRFAM, METHOD and IF_<option> (IF_GATEWAY ...).
# NetworkManager's 01-ifupdown bridge runs this too (ADDRFAM=NetworkManager): our dispatcher
# script handles those.
case "${IFACE:-}" in ""|lo|--all) exit 0 ;; esac
[ "${ADDRFAM:-}" != NetworkManager ] || exit 0
exec "$MPTCP_PULUMI_SYNC" "$IFACE" up "${IF_GATEWAY:-}"
