# shellcheck shell=sh
# Files we write outside our state directory (our sysctl.d file, the hooks, the unit, drop-ins):
# what stood at each path before us, whatever it was (a regular file, a symlink, a directory or
# nothing), is recorded under a concern's state directory and put back by revert. We replace what
# stands at a path and never write through it: a symlink there gives way to our file (its target,
# the admin's file, is left alone) and comes back at revert. A file is written whole in a staging
# directory beside it, DIR/.mptcp-pulumi.PID (on its file system; no hook runner, systemd or
# sysctl reads a dot-named directory), then renamed into place; what a run that died mid-write
# left there is removed by the next write or revert of the path (file_sweep).

# file_sweep PATH: removes what runs that died while writing PATH left beside it: staging
# directories, and the PATH.tmp.PID files of versions that wrote them there.
file_sweep() {
  for _t in "${1%/*}"/.mptcp-pulumi.[0-9]* "$1".tmp.[0-9]*; do
    if [ -e "$_t" ] || [ -L "$_t" ]; then rm -rf "$_t"; fi
  done
}

# file_clear PATH: makes way for a rename to PATH: removes a symlink or a directory standing there
# (a rename would go through the one and fails on the other); a file is left to the rename.
file_clear() {
  if [ -L "$1" ]; then rm -f "$1"; elif [ -d "$1" ]; then rm -rf "$1"; fi
}

# file_remember DIR PATH: records, once, what PATH is before we first write it: a copy in
# DIR/files/PATH.orig (a file, a symlink or a directory, with its modes), or DIR/files/PATH.absent.
# The copy is made aside and renamed: a record is whole or missing, never part of a file.
file_remember() {
  _rec=$1/files$2
  [ ! -e "$_rec.orig" ] && [ ! -L "$_rec.orig" ] && [ ! -e "$_rec.absent" ] || return 0
  [ -d "${_rec%/*}" ] || mkdir -p "${_rec%/*}"
  if [ -e "$2" ] || [ -L "$2" ]; then
    { cp -pPR "$2" "$STATE_DIR/.tmp.$$" && mv "$STATE_DIR/.tmp.$$" "$_rec.orig"; } || { rm -rf "$STATE_DIR/.tmp.$$"; die "cannot record what stands at $2 (disk full or read-only?)"; }
  else
    : > "$_rec.absent"
  fi
}

# file_write PATH MODE COMMAND...: writes COMMAND's output to PATH with MODE, whole: in the staging
# directory beside PATH, then renamed over what stands there (file_remember recorded it).
# _stage names the staging directory while it exists, for the EXIT trap (tmp_clean).
file_write() {
  _path=$1 _mode=$2
  shift 2
  file_sweep "$_path"
  _stage=${_path%/*}/.mptcp-pulumi.$$
  # (a new file is 644 under the prologue's umask 022: no chmod for that mode)
  { mkdir "$_stage" && "$@" > "$_stage/f" && { [ "$_mode" = 644 ] || chmod "$_mode" "$_stage/f"; } && file_clear "$_path" && mv -f "$_stage/f" "$_path" && rmdir "$_stage"; } || { rm -rf "$_stage"; _stage=""; die "cannot write $_path (disk full or read-only?)"; }
  _stage=""
}

# file_install DIR PATH MODE TEXT: writes TEXT and a newline to PATH with MODE, remembering what
# was there; a regular file already equal to it is left alone (compared without a process).
file_install() {
  file_remember "$1" "$2"
  if file_has_text "$2" "$4" && [ "$(stat -c %a "$2")" = "$3" ]; then return 0; fi
  file_write "$2" "$3" printf '%s\n' "$4"
  say "wrote $2"
}

# file_put DIR PATH MODE FUNCTION: writes what FUNCTION prints to PATH with MODE, remembering what
# was there (no comparison: for a file known to differ).
file_put() {
  file_remember "$1" "$2"
  file_write "$2" "$3" "$4"
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

# file_restore_all DIR: puts back, or removes, what stood at each path that file_remember recorded
# in DIR, whatever its type, and forgets the records. DIR/files itself stays, empty, until the
# caller removes the concern's state (state_tidy): a revert cut short after this still finds it.
file_restore_all() {
  [ -d "$1/files" ] || return 0
  # (a directory recorded is one record: not descended into)
  find "$1/files" \( -name '*.orig' -o -name '*.absent' \) -prune -print | while IFS= read -r _rec; do
    file_restore "$1" "$_rec"
  done
  find "$1/files" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
}

# file_restore DIR RECORD: puts back what RECORD (under DIR/files) says stood at its path, then
# removes it: a file or symlink by a rename, like file_write; a directory by a copy, redone whole
# by the next revert when cut short (the record goes last).
file_restore() {
  _path=${2#"$1/files"}
  case $_path in
    *.orig)
      _path=${_path%.orig}
      file_sweep "$_path"
      if [ -d "$2" ] && [ ! -L "$2" ]; then
        file_clear "$_path"
        rm -f "$_path"
        cp -pPR "$2" "$_path"
      else
        _stage=${_path%/*}/.mptcp-pulumi.$$
        { mkdir "$_stage" && cp -pP "$2" "$_stage/f" && file_clear "$_path" && mv -f "$_stage/f" "$_path" && rmdir "$_stage"; } || { rm -rf "$_stage"; die "cannot put back $_path (its record: $2)"; }
      fi ;;
    *.absent)
      _path=${_path%.absent}
      file_sweep "$_path"
      rm -f "$_path" ;;
  esac
  rm -rf "$2"
}

# dir_create DIR PATH: creates the directory PATH, recording in DIR that we did (first, so that a
# directory we made is never left unrecorded).
dir_create() {
  [ -d "$2" ] && return 0
  state_write "$1/created-dirs" dir_created "$1" "$2"
  mkdir "$2"
}

# dir_created DIR [PATH]: prints the directories recorded in DIR as made by us, then PATH.
dir_created() {
  if [ -e "$1/created-dirs" ]; then while IFS= read -r _l; do printf '%s\n' "$_l"; done < "$1/created-dirs"; fi
  [ $# -lt 2 ] || printf '%s\n' "$2"
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
    file_clear "$_wants/$UNIT_NAME"
    ln -sfn "../$UNIT_NAME" "$_wants/$UNIT_NAME"
    _reload=1
  fi
  [ -z "$_reload" ] || systemd_reload
}
