# Sets each net.mptcp knob the config names (KNOBS: KNOB|CONFIG KEY|VALUE per line), live and in
# our own sysctl.d file, which boot applies; knobs managed before but no longer in the config go
# back to their originals. Everything is checked before anything changes. (Loops read heredocs
# and values are read with the read builtin: no pipeline or command substitution, so the apply
# starts few processes.)
knob_need_mptcp
d=$STATE_DIR/sysctl
# 1. check everything the config asks for; "KNOB VALUE" lines as this kernel takes them
wanted=""
# shellcheck disable=SC2154 # _resolved: set by knob_resolve
while IFS='|' read -r knob key value; do
  knob_resolve "$knob" "$key" "$value"
  wanted="${wanted:+$wanted
}$_resolved"
done <<EOF
$KNOBS
EOF
state_lock
txn_begin sysctl "sysctl" content_revert
# (the directories of a first apply in one mkdir)
[ -d "$d/knobs" ] || mkdir -p "$d/knobs" "$d/files${SYSCTL_CONF%/*}"
# 2. capture the originals once, then apply live (one read of each knob)
# shellcheck disable=SC2154 # _knob: set by knob_read
while read -r knob value; do
  knob_read "$knob"
  state_keep "$d/knobs/$knob" printf '%s\n' "$_knob"
  knob_write "$knob" "$value"
done <<EOF
$wanted
EOF
# 3. knobs managed before but no longer in the config go back to their originals
for f in "$d"/knobs/*; do
  [ -e "$f" ] || continue
  knob=${f##*/}
  case "
$wanted" in *"
$knob "*) continue ;; esac
  knob_restore "$knob"
  say "net.mptcp.$knob restored"
done
# 4. persist in our own sysctl.d file
[ -d /etc/sysctl.d ] || die "/etc/sysctl.d is missing: cannot persist sysctl settings on this host"
knob_conf "$wanted"
# shellcheck disable=SC2154 # _conf: set by knob_conf
file_install "$d" "$SYSCTL_CONF" 644 "$_conf"
# what the kernel holds now (knob_write read it, and wrote VALUE where it differed)
while read -r knob value; do echo "net.mptcp.$knob = $value"; report sysctl "net.mptcp.$knob" "$value"; done <<EOF
$wanted
EOF
txn_commit sysctl
