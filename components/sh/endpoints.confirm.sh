# Confirms the endpoints apply over a new SSH connection: disarms its rollback (see
# lib/rollback.sh), or fails if the rollback already undid it.
state_lock
rb_confirm endpoints "endpoints"
