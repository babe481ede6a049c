# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for the harness scripts.  Sourced, not executed.

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}

msg() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as root: directly, through sudo, or not at all.
as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo "$@"
    else
        return 126
    fi
}

# The Debian mirror the machine's own apt sources name (first http(s) URI
# that serves "debian", not debian-security).
debian_mirror() {
    local uri
    uri=$( { cat /etc/apt/sources.list 2>/dev/null
             cat /etc/apt/sources.list.d/*.list 2>/dev/null
             cat /etc/apt/sources.list.d/*.sources 2>/dev/null; } |
           grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security |
           head -n1 | tr -d ' ')
    echo "${uri:-http://deb.debian.org/debian}"
}

# Private apt configurations: their own sources lists and lists
# directories, so the system's apt sources are never edited.  $PAPT: the
# sources of bookworm (the default) and bookworm-backports (fio's source for
# the guest, meson, pycotap); $PAPT/trixie: the
# binary packages of trixie and trixie-backports, apart so that they never
# take part in resolving bookworm's dependencies; $PAPT/sid: sid's
# packages and sources (the newest test guest's).
PAPT=$BUILD/apt
papt_opts() {  # papt_opts [DIR]
    local d=${1:-$PAPT}
    echo "-o Dir::Etc::SourceList=$d/sources.list" \
         "-o Dir::Etc::SourceParts=/dev/null" \
         "-o Dir::State::Lists=$d/lists" \
         "-o Dir::Cache::archives=$d/archives" \
         "-o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=" \
         "-o APT::Sandbox::User=root"
}

papt_update() {  # papt_update [trixie|sid]
    local d=$PAPT mirror
    mirror=$(debian_mirror)
    local kr="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]"
    case ${1:-} in
    trixie|sid) d=$PAPT/$1 ;;
    esac
    mkdir -p "$d/lists/partial" "$d/archives/partial"
    case ${1:-} in
    trixie)
        printf 'deb %s %s %s main\n' "$kr" "$mirror" trixie \
            "$kr" "$mirror" trixie-backports > "$d/sources.list.new" ;;
    sid)
        printf '%s %s %s sid main\n' deb "$kr" "$mirror" deb-src "$kr" "$mirror" \
            > "$d/sources.list.new" ;;
    *)
        cat > "$d/sources.list.new" <<EOS
deb-src $kr $mirror bookworm main
deb $kr $mirror bookworm-backports main
deb $kr $mirror bookworm main
EOS
        ;;
    esac
    local stamp=$d/lists/.updated
    cmp -s "$d/sources.list.new" "$d/sources.list" || rm -f "$stamp"
    mv "$d/sources.list.new" "$d/sources.list"
    # Refresh at most once an hour.
    if [ -z "$(find "$stamp" -mmin -60 2>/dev/null)" ]; then
        msg "apt (private configuration $d): update from $mirror"
        # shellcheck disable=SC2046
        apt-get $(papt_opts "$d") -qq update >&2 ||
            die "apt-get update with the private configuration in $d failed"
        touch "$stamp"
    fi
}

# tree_diff A B: the files in which QEMU trees A and B differ (diff -r -q),
# apart from what building and testing leave in a source tree: git and
# harness stamps, iotests' scratch, Python's caches and the egg-info that
# configure's venv writes into python/ when it installs QEMU's package
tree_diff() {
    diff -r -q -x .git -x .harness-inputs -x .complete -x scratch \
        -x __pycache__ -x '*.egg-info' "$1" "$2"
}

# Top-level directories of this repository that hold new files at their
# final place in QEMU's tree (the overlay).  Edits to QEMU's own files are
# patches in patches/, applied in the order of patches/series.
OVERLAY_DIRS="block docs host hw include qapi tests util"

# The overlay's files, relative to $TOP: tracked ones and new ones git does
# not ignore, so uncommitted work is built too.
overlay_files() {
    local d
    for d in $OVERLAY_DIRS; do
        [ -d "$TOP/$d" ] || continue
        if git -C "$TOP" rev-parse --git-dir >/dev/null 2>&1; then
            git -C "$TOP" ls-files --cached --others --exclude-standard -- "$d"
        else
            (cd "$TOP" && find "$d" -type f)
        fi
    done | sort -u | while read -r f; do [ -f "$TOP/$f" ] && echo "$f"; done
}

# The patches of patches/series, in order (comments and blank lines skipped).
series_patches() {
    [ -f "$TOP/patches/series" ] || return 0
    sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$TOP/patches/series" | grep -v '^$' || true
}

# Check that DIR is a QEMU 11.1.x source tree; print its version.
check_qemu_tree() {
    local dir=$1 v
    [ -d "$dir" ] || die "QEMU source '$dir' is not a directory"
    [ -f "$dir/VERSION" ] && [ -f "$dir/block/qcow2.c" ] && [ -x "$dir/configure" ] ||
        die "'$dir' is not a QEMU source tree (no VERSION, block/qcow2.c or configure there)"
    v=$(tr -d '[:space:]' < "$dir/VERSION")
    case $v in
    11.1.*) echo "$v" ;;
    *) die "'$dir' is QEMU $v; this series needs QEMU 11.1.x" ;;
    esac
}

# compose OUT VAR=VALUE... -- FILE...: a guest script (for
# harness/guest/run.sh) that sets the variables, then runs the files' text
compose() {
    local out=$1
    shift
    echo '#!/bin/sh' > "$out"
    while [ "$1" != -- ]; do
        printf '%s\n' "$1" >> "$out"
        shift
    done
    shift
    cat "$@" >> "$out"
}
