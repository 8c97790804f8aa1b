set -eu
umask 022
export LC_ALL=C
