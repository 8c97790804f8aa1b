# shellcheck shell=sh
# Files we write outside our state directory (our sysctl.d file, the hooks, the unit): what stood
# at each path before us is recorded under a concern's state directory, and put back by revert.

# file_remember DIR PATH: records, once, what PATH is before we first write it: a copy in
# DIR/files/PATH.orig, or DIR/files/PATH.absent.
file_remember() {
  _rec=$1/files$2
  [ ! -e "$_rec.orig" ] && [ ! -e "$_rec.absent" ] || return 0
  [ -d "${_rec%/*}" ] || mkdir -p "${_rec%/*}"
  if [ -e "$2" ] || [ -L "$2" ]; then cp -pP "$2" "$_rec.orig"; else : > "$_rec.absent"; fi
}

# file_install DIR PATH MODE [TEXT]: writes TEXT and a newline (without TEXT: stdin) to PATH with
# MODE, remembering what was there; a file already equal to it is left alone. With TEXT, the
# comparison starts no process.
file_install() {
  file_remember "$1" "$2"
  if [ $# -ge 4 ]; then
    if file_has_text "$2" "$4" && [ "$(stat -c %a "$2")" = "$3" ]; then return 0; fi
    # (a new file is 644 under the prologue's umask 022: no chmod for that mode)
    { printf '%s\n' "$4" > "$2.tmp.$$" && { [ "$3" = 644 ] || chmod "$3" "$2.tmp.$$"; }; } || { rm -f "$2.tmp.$$"; die "cannot write $2"; }
  else
    { cat > "$2.tmp.$$" && chmod "$3" "$2.tmp.$$"; } || { rm -f "$2.tmp.$$"; die "cannot write $2"; }
    if cmp -s "$2.tmp.$$" "$2" && [ "$(stat -c %a "$2")" = "$3" ]; then
      rm -f "$2.tmp.$$"
      return 0
    fi
  fi
  mv "$2.tmp.$$" "$2" || { rm -f "$2.tmp.$$"; die "cannot write $2"; }
  say "wrote $2"
}

# file_put DIR PATH MODE FUNCTION: writes what FUNCTION prints to PATH with MODE, remembering what
# was there, in one rename (no comparison: for a file known to differ).
file_put() {
  file_remember "$1" "$2"
  { "$4" > "$2.tmp.$$" && { [ "$3" = 644 ] || chmod "$3" "$2.tmp.$$"; } && mv "$2.tmp.$$" "$2"; } || { rm -f "$2.tmp.$$"; die "cannot write $2"; }
  say "wrote $2"
}

# file_has_text PATH TEXT: PATH is a regular file holding TEXT and a newline (read with the read
# builtin: meant for small files).
file_has_text() {
  [ -f "$1" ] && [ ! -L "$1" ] || return 1
  _have=""
  while IFS= read -r _l; do _have="$_have$_l
"; done < "$1"
  [ "$_have" = "$2
" ]
}

# file_restore_all DIR: puts back, or removes, every file that file_remember recorded in DIR.
file_restore_all() {
  [ -d "$1/files" ] || return 0
  find "$1/files" -type f | while read -r _rec; do
    _path=${_rec#"$1/files"}
    case $_rec in
      *.orig) _path=${_path%.orig}; rm -f "$_path"; cp -pP "$_rec" "$_path" ;;
      *.absent) rm -f "${_path%.absent}" ;;
    esac
    rm -f "$_rec"
  done
  find "$1/files" -depth -type d -exec rmdir {} + 2>/dev/null || true
}

# dir_create DIR PATH: creates the directory PATH, recording in DIR that we did.
dir_create() {
  [ -d "$2" ] && return 0
  mkdir "$2"
  echo "$2" >> "$1/created-dirs"
}

# dir_remove_created DIR: removes the directories dir_create made, where empty.
dir_remove_created() {
  [ -e "$1/created-dirs" ] || return 0
  while read -r _dir; do rmdir "$_dir" 2>/dev/null || true; done < "$1/created-dirs"
  rm -f "$1/created-dirs"
}

# systemd_reload: makes a running systemd read the unit files again.
systemd_reload() {
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then systemctl daemon-reload; fi
}

# unit_enable DIR [CHANGED]: enables our boot unit the way `systemctl enable` does (a
# multi-user.target.wants link), which also works where systemd is not running. A running systemd
# reads the unit files again only when the link or (CHANGED not empty) the unit file changed: a
# reload costs systemd about 0.1 s of CPU, and a re-apply that changes nothing needs none.
unit_enable() {
  [ -d /etc/systemd/system ] || return 0
  _reload=${2:-}
  _wants=/etc/systemd/system/multi-user.target.wants
  dir_create "$1" "$_wants"
  if [ "$(readlink "$_wants/$UNIT_NAME" 2>/dev/null)" != "../$UNIT_NAME" ]; then
    file_remember "$1" "$_wants/$UNIT_NAME"
    ln -sfn "../$UNIT_NAME" "$_wants/$UNIT_NAME"
    _reload=1
  fi
  [ -z "$_reload" ] || systemd_reload
}
