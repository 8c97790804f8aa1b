# shellcheck shell=sh
# net.mptcp.* knobs under /proc/sys/net/mptcp.

# knob_need_mptcp: the kernel has MPTCP, or a clear error.
knob_need_mptcp() {
  [ -d /proc/sys/net/mptcp ] || die "this kernel ($(uname -r)) has no MPTCP (/proc/sys/net/mptcp is missing): needs Linux >= 5.6 with CONFIG_MPTCP=y"
}

# knob_resolve KNOB KEY VALUE: sets _resolved to "KNOB VALUE" as this kernel takes it, or dies
# naming the config key (KEY) when the kernel lacks the knob or the value. path_manager appeared
# in 6.15; older kernels have pm_type (0 kernel, 1 userspace).
knob_resolve() {
  if [ "$1" = path_manager ] && [ ! -e /proc/sys/net/mptcp/path_manager ]; then
    [ -e /proc/sys/net/mptcp/pm_type ] || die "sysctl.$2: this kernel ($(uname -r)) has neither net.mptcp.path_manager nor net.mptcp.pm_type: remove $2"
    if [ "$3" = kernel ]; then _resolved="pm_type 0"; else _resolved="pm_type 1"; fi
    return 0
  fi
  [ -e "/proc/sys/net/mptcp/$1" ] || die "sysctl.$2: this kernel ($(uname -r)) has no net.mptcp.$1: remove $2 or upgrade the kernel"
  if [ "$1" = scheduler ]; then
    knob_read available_schedulers
    case " $_knob " in *" $3 "*) ;; *) die "sysctl.$2: scheduler $3 is not available (available: $_knob): pick one of those" ;; esac
  fi
  _resolved="$1 $3"
}

# knob_read KNOB: sets _knob to net.mptcp.KNOB's value. (With cat: dash's read builtin reads a
# byte at a time, and an integer sysctl returns nothing at an offset past 0, so it would read
# 120 as 1.)
knob_read() { _knob=$(cat "/proc/sys/net/mptcp/$1"); }

# knob_conf WANTED: sets _conf to our sysctl.d file for the "KNOB VALUE" lines of WANTED.
knob_conf() {
  _conf="# Managed by mptcp-pulumi for host $HOST; pulumi destroy removes it."
  while read -r _k _value; do
    [ -z "$_k" ] || _conf="$_conf
net.mptcp.$_k = $_value"
  done <<EOF
$1
EOF
}

# knob_write KNOB VALUE: sets net.mptcp.KNOB where it differs from _knob (the caller's knob_read).
knob_write() {
  if [ "$_knob" != "$2" ]; then
    printf '%s\n' "$2" > "/proc/sys/net/mptcp/$1"
    say "net.mptcp.$1 = $2"
  fi
}

# knob_restore KNOB: writes back the value saved before our first apply, and forgets it.
knob_restore() {
  read -r _orig < "$STATE_DIR/sysctl/knobs/$1"
  knob_read "$1"
  knob_write "$1" "$_orig"
  rm -f "$STATE_DIR/sysctl/knobs/$1"
}
