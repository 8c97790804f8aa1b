# Removes this concern's confirmation (destroy or replace): a rollback still armed is stopped.
if [ -d "$STATE_DIR" ]; then
  state_lock
  rb_disarm "$CONCERN" || true
fi
say "$CONCERN: no rollback pending"
