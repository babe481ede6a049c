#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Install, from Debian's packages, whatever the build and the tests need and
# the machine lacks.  What Debian 12 does not have comes through the
# private apt configurations: meson (QEMU 11.1 needs >= 1.5) and pycotap
# from bookworm-backports, the Python package qemu.qmp (QEMU 11.1's
# configure requires it; arch all, depends only on python3) from
# trixie-backports.

. "$(dirname "$0")/common.sh"

PKGS="gcc make patch rsync git xz-utils dpkg-dev ca-certificates
      ninja-build pkg-config flex bison python3 python3-venv ccache
      libglib2.0-dev libaio-dev liburing-dev zlib1g-dev libzstd-dev libfdt-dev
      seabios ipxe-qemu gcc-multilib time cpio binutils device-tree-compiler
      zstd
      ${HARNESS_EXTRA_PKGS:-}"
# Packages from newer releases: NAME/RELEASE
NEWER="python3-pycotap/bookworm-backports python3-qemu-qmp/trixie-backports"
MESON_MIN=1.5

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
        grep -q '^install ok installed$' || missing="$missing $p"
done

meson_ok() {
    local v
    v=$(dpkg-query -W -f='${Version}' meson 2>/dev/null) || return 1
    dpkg --compare-versions "$v" ge "$MESON_MIN"
}
meson_ok || need_meson=1
newer=""
for p in $NEWER; do
    dpkg-query -W -f='${Status}\n' "${p%/*}" 2>/dev/null |
        grep -q '^install ok installed$' || newer="$newer $p"
done

if [ -z "$missing" ] && [ -z "${need_meson:-}" ] && [ -z "$newer" ]; then
    exit 0
fi

if ! as_root true; then
    die "missing Debian packages:${missing}${need_meson:+ meson(>=$MESON_MIN, bookworm-backports)}${newer}
Install them as root (apt-get install ...), or run this as root or with sudo."
fi

mkdir -p "$BUILD"
LOG=$BUILD/apt-install.log
apt_install() {
    DEBIAN_FRONTEND=noninteractive as_root apt-get -y -q install \
        --no-install-recommends "$@" > "$LOG" 2>&1 || {
        tail -n 20 "$LOG" >&2
        die "apt-get install failed for: $* (log: $LOG)"
    }
}

if [ -n "$missing" ]; then
    msg "installing Debian packages:$missing"
    as_root apt-get -qq update >&2 || warn "apt-get update failed"
    # shellcheck disable=SC2086
    apt_install $missing
fi

if [ -n "${need_meson:-}" ]; then
    msg "installing meson >= $MESON_MIN from bookworm-backports"
    papt_update
    deb=$PAPT/debs
    rm -rf "$deb" && mkdir -p "$deb"
    # shellcheck disable=SC2046
    (cd "$deb" && apt-get $(papt_opts) -qq download meson/bookworm-backports) >&2 ||
        die "could not download meson from bookworm-backports"
    apt_install "$deb"/meson_*.deb
    meson_ok || die "meson >= $MESON_MIN still missing after install"
fi

# fetch_newer DIR NAME/RELEASE: download the package into DIR through the
# private apt configuration that knows RELEASE
fetch_newer() {
    local dir=$1 p=$2 conf=$PAPT
    case ${p#*/} in
    trixie*) conf=$PAPT/trixie; papt_update trixie ;;
    *) papt_update ;;
    esac
    # shellcheck disable=SC2046
    (cd "$dir" && apt-get $(papt_opts "$conf") -qq download "$p") >&2 ||
        die "could not download $p"
}
if [ -n "$newer" ]; then
    msg "installing from newer releases:$newer"
    deb=$PAPT/debs-newer
    rm -rf "$deb" && mkdir -p "$deb"
    for p in $newer; do
        fetch_newer "$deb" "$p"
    done
    apt_install "$deb"/*.deb
fi
