# endpoints: the table the apply (or, with hooks, an interface event) would make now, and no
# mptcpd adding endpoints too.
mptcpd_found
[ -z "$_mptcpd" ] || drift "endpoints" "$_mptcpd"
if want=$(for i in $(ep_ifaces); do ep_want "$i"; done 2>&1); then
  chk_lines "endpoints" endpoint "$(printf '%s\n' "$want" | ep_normalize)" "$(ep_table)"
else
  drift "endpoints" "${want##*error: }"
fi
chk_rolled_back endpoints "endpoints"
