#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetch the QEMU source that the series is built on, from Debian, and
# unpack its upstream tarball once into build/cache.  Prints the unpacked
# tree's path; says on stderr which version it is.
#
# One version, always: the one pinned in harness/qemu-source.sha256,
# fetched by URL from the mirror's pool with apt's own downloader and
# checked against the SHA-256 sums kept there (the .dsc's, and the .dsc's
# Checksums-Sha256 lines).  Nothing is unpacked that was not checked.  A
# newer 11.1.x that the archive lists is not taken by itself: the patches
# must apply exactly (git am, make check-series), the regression gate's
# baseline (harness/iotests-quick-baseline) was measured on this tree, and
# the mirror serves some listed versions and not others.  Moving the base
# is a commit that changes the pin, the baseline and what they name.
#
# We use the upstream tarball (orig.tar.xz) and, of Debian's packaging
# patches, only the one that the +ds tarball needs to configure at all: its
# edk2 blobs are stripped.  This tree and an upstream 11.1.x checkout behave
# alike.
DS_FIXES="skip-unpack-edk2-blobs.patch"

. "$(dirname "$0")/common.sh"

SUMS=$TOP/harness/qemu-source.sha256
CACHE=$BUILD/cache
PIN=$(sed -n 's/^# version: //p' "$SUMS")

# Upstream version of a Debian version: 1:11.1.1+ds-1 -> 11.1.1
upstream_of() { local v=${1#*:}; v=${v%%+*}; echo "${v%-*}"; }

# unpack VERSION HOW DIR: the downloaded files of VERSION in $dl -> DIR
unpack() {
    local ver=$1 how=$2 dir=$3 orig debtar fix
    orig=$(ls "$dl"/qemu_*.orig.tar.xz 2>/dev/null | head -n1)
    [ -n "$orig" ] || die "no upstream tarball in $dl"
    debtar=$(ls "$dl"/qemu_*.debian.tar.xz 2>/dev/null | head -n1)
    [ -n "$debtar" ] || die "no debian tarball in $dl"
    msg "unpacking $(basename "$orig")"
    rm -rf "$dir.tmp" "$dir"
    mkdir -p "$dir.tmp"
    tar -xJf "$orig" -C "$dir.tmp" --strip-components=1 ||
        die "could not unpack $orig"
    for fix in $DS_FIXES; do
        fix=debian/patches/$fix
        tar -xJf "$debtar" -C "$dl" "$fix" ||
            die "$(basename "$debtar") has no $fix"
        (cd "$dir.tmp" && patch -p1 --batch -s < "$dl/$fix") ||
            die "Debian's $fix does not apply to $(basename "$orig")"
    done
    echo "$ver $how $(date -u +%FT%TZ)" > "$dir.tmp/.complete"
    mv "$dir.tmp" "$dir"
    rm -rf "$dl"
}

# cached VERSION: print the unpacked tree of VERSION, if there is one
cached() {
    local dir
    dir=$CACHE/qemu-$(upstream_of "$1")
    [ "$(cut -d' ' -f1 "$dir/.complete" 2>/dev/null)" = "$1" ] && echo "$dir"
}

# done_with DIR: say what DIR is and print it
done_with() {
    local ver how
    read -r ver how < "$1/.complete"
    msg "QEMU source: $(cat "$1/VERSION") (Debian's $ver, ${how% *})"
    echo "$1"
    exit 0
}

mkdir -p "$CACHE"
dl=$CACHE/download
[ -n "$PIN" ] || die "no '# version:' line in $SUMS"
dir=$(cached "$PIN") && done_with "$dir"
msg "fetching Debian's qemu source package $PIN by URL from the mirror's pool"
rm -rf "$dl" && mkdir -p "$dl"
pool=$(debian_mirror)
pool=${pool%/}/pool/main/q/qemu
grep -E '^[0-9a-f]{64} [0-9]+ [^ ]+$' "$SUMS" | while read -r sum size f; do
    /usr/lib/apt/apt-helper -qq -o APT::Sandbox::User=root \
        download-file "$pool/$f" "$dl/$f" \
        "SHA256:$sum" >&2 ||
        die "could not fetch $pool/$f with SHA-256 $sum"
done
# apt-helper checked each file against its sum; check them all again, and
# that the .dsc names the same sums for its tarballs
(cd "$dl" && grep -E '^[0-9a-f]{64} ' "$SUMS" | awk '{print $1 "  " $3}' |
 sha256sum --quiet -c) >&2 || die "the files in $dl do not match $SUMS"
grep -E '^[0-9a-f]{64} .*\.tar\.xz$' "$SUMS" | while read -r sum size f; do
    grep -qxF " $sum $size $f" "$dl"/qemu_*.dsc ||
        die "the .dsc does not list $f with the SHA-256 in $SUMS"
done
unpack "$PIN" "by URL from the mirror's pool, checked against harness/qemu-source.sha256" \
    "$CACHE/qemu-$(upstream_of "$PIN")"
done_with "$(cached "$PIN")"
