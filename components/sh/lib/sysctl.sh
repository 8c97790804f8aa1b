# shellcheck shell=sh
# net.mptcp.* knobs under /proc/sys/net/mptcp.

# knob_need_mptcp: the kernel has MPTCP, or a clear error.
knob_need_mptcp() {
  [ -d /proc/sys/net/mptcp ] || die "this kernel ($(uname -r)) has no MPTCP (/proc/sys/net/mptcp is missing): needs Linux >= 5.6 with CONFIG_MPTCP=y"
}

# knob_resolve KNOB KEY VALUE: prints "KNOB VALUE" as this kernel takes it, or dies naming the
# config key (KEY) when the kernel lacks the knob or the value. path_manager appeared in 6.15;
# older kernels have pm_type (0 kernel, 1 userspace).
knob_resolve() {
  if [ "$1" = path_manager ] && [ ! -e /proc/sys/net/mptcp/path_manager ]; then
    [ -e /proc/sys/net/mptcp/pm_type ] || die "$AT.sysctl.$2: this kernel ($(uname -r)) has neither net.mptcp.path_manager nor net.mptcp.pm_type: remove $2"
    if [ "$3" = kernel ]; then echo "pm_type 0"; else echo "pm_type 1"; fi
    return 0
  fi
  [ -e "/proc/sys/net/mptcp/$1" ] || die "$AT.sysctl.$2: this kernel ($(uname -r)) has no net.mptcp.$1: remove $2 or upgrade the kernel"
  if [ "$1" = scheduler ] && ! grep -qw -- "$3" /proc/sys/net/mptcp/available_schedulers; then
    die "$AT.sysctl.$2: scheduler $3 is not available (available: $(cat /proc/sys/net/mptcp/available_schedulers)): pick one of those"
  fi
  echo "$1 $3"
}

# knob_conf WANTED: our sysctl.d file for the "KNOB VALUE" lines of WANTED.
knob_conf() {
  echo "# Managed by mptcp-pulumi for host $HOST; pulumi destroy removes it."
  printf '%s\n' "$1" | while read -r _knob _value; do echo "net.mptcp.$_knob = $_value"; done
}

# knob_write KNOB VALUE: sets net.mptcp.KNOB where it differs.
knob_write() {
  if [ "$(cat "/proc/sys/net/mptcp/$1")" != "$2" ]; then
    printf '%s\n' "$2" > "/proc/sys/net/mptcp/$1"
    say "net.mptcp.$1 = $2"
  fi
}

# knob_restore KNOB: writes back the value saved before our first apply, and forgets it.
knob_restore() {
  knob_write "$1" "$(cat "$STATE_DIR/sysctl/knobs/$1")"
  rm -f "$STATE_DIR/sysctl/knobs/$1"
}
