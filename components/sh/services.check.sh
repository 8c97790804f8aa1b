# services: each unit's drop-in, and whether systemd has loaded it.
while IFS='|' read -r unit mode _; do
  if ! why=$(svc_check "$unit" "$mode" 2>&1); then drift "services[$unit]" "${why##*error: }"; continue; fi
  want=$(svc_dropin "$unit" "$mode")
  printf '%s\n' "$want" | chk_file "services[$unit]" "$(svc_dropin_path "$unit")" 644
  if [ "$(systemctl show -p NeedDaemonReload --value -- "$unit")" = yes ]; then
    drift "services[$unit]" "$unit: systemd has not loaded its unit files since they changed (systemctl daemon-reload)"
  fi
done <<EOF
$SERVICES
EOF
