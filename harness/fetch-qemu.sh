#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetch Debian's qemu source package through the private apt configuration
# (apt checks it against the archive's signed index) and unpack its upstream
# tarball once into build/cache.  Prints the unpacked tree's path.
#
# We use the upstream tarball (orig.tar.xz) and, of Debian's packaging
# patches, only the two that the +ds tarball needs to configure at all: its
# python/wheels (pycotap, for the functional tests only) and its edk2 blobs
# are stripped.  This tree and an upstream 10.0.x checkout behave alike.
DS_FIXES="disable-pycotap.patch skip-unpack-edk2-blobs.patch"

. "$(dirname "$0")/common.sh"

PIN=${QEMU_DEB_VERSION:-1:10.0.13+ds-0+deb13u1}
CACHE=$BUILD/cache

# Upstream version of a Debian version: 1:10.0.13+ds-0+deb13u1 -> 10.0.13
upstream_of() { local v=${1#*:}; v=${v%%+*}; echo "${v%-*}"; }

# Fast path: the pinned version is already unpacked.
dir=$CACHE/qemu-$(upstream_of "$PIN")
if [ -f "$dir/.complete" ]; then
    echo "$dir"
    exit 0
fi

papt_update
# shellcheck disable=SC2046
versions=$(apt-cache $(papt_opts) showsrc qemu 2>/dev/null |
           sed -n 's/^Version: //p' | sort -u)
ver=$PIN
if ! grep -qxF "$PIN" <<<"$versions"; then
    ver=$(grep -E '^1:10\.0\.[0-9]+' <<<"$versions" |
          sort -V | tail -n1 || true)
    [ -n "$ver" ] || die "Debian's archive (trixie) has no qemu 10.0.x source package; found: $(echo $versions)"
    warn "qemu $PIN is gone from the archive; using $ver instead"
    dir=$CACHE/qemu-$(upstream_of "$ver")
    if [ -f "$dir/.complete" ]; then
        echo "$dir"
        exit 0
    fi
fi

msg "fetching Debian's qemu source package $ver"
dl=$CACHE/download
rm -rf "$dl" "$dir.tmp" "$dir"
mkdir -p "$dl"
# shellcheck disable=SC2046
(cd "$dl" && apt-get $(papt_opts) -qq source --download-only "qemu=$ver") >&2 ||
    die "apt-get source qemu=$ver failed"
orig=$(ls "$dl"/qemu_*.orig.tar.xz 2>/dev/null | head -n1)
[ -n "$orig" ] || die "no upstream tarball in $dl"

msg "unpacking $(basename "$orig")"
mkdir -p "$dir.tmp"
tar -xJf "$orig" -C "$dir.tmp" --strip-components=1 ||
    die "could not unpack $orig"
debtar=$(ls "$dl"/qemu_*.debian.tar.xz 2>/dev/null | head -n1)
[ -n "$debtar" ] || die "no debian tarball in $dl"
for fix in $DS_FIXES; do
    fix=debian/patches/$fix
    tar -xJf "$debtar" -C "$dl" "$fix" || die "$(basename "$debtar") has no $fix"
    (cd "$dir.tmp" && patch -p1 --batch -s < "$dl/$fix") ||
        die "Debian's $fix does not apply to $(basename "$orig")"
done
echo "$ver $(date -u +%FT%TZ)" > "$dir.tmp/.complete"
mv "$dir.tmp" "$dir"
rm -rf "$dl"
echo "$dir"
