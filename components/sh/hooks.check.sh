# hooks: the installed files (FILES, as the hooks apply writes them), the boot unit's enablement,
# and each endpoint interface's routing.
printf '%s\n' "$FILES" | while IFS='|' read -r path mode only content; do
  [ -z "$only" ] || [ -d "$only" ] || continue
  "$content" | chk_file "$AT.hooks" "$path" "$mode"
done
if [ -d /etc/systemd/system ] && [ "$(readlink "/etc/systemd/system/multi-user.target.wants/$UNIT_NAME" 2>/dev/null)" != "../$UNIT_NAME" ]; then
  drift "$AT.hooks" "$UNIT_NAME is not enabled (multi-user.target.wants)"
fi
for i in $(ep_ifaces); do chk_routing "$i"; done
