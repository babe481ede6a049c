#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetch QEMU 11.1.x's source from Debian and unpack its upstream tarball
# once into build/cache.  Prints the unpacked tree's path; says on stderr
# which version it is and how it came.
#
# 1. The newest 11.1.x source package that the archive's signed indexes
#    (trixie-backports, sid) list and the mirror serves, with apt-get
#    source through the private apt configuration: apt checks the files
#    against the signed index.
# 2. If the mirror serves none of them: the version pinned in
#    harness/qemu-source.sha256, fetched by URL from the mirror's pool
#    with apt's own downloader and checked against the SHA-256 sums kept
#    there (the .dsc's, and the .dsc's Checksums-Sha256 lines).
# Nothing is unpacked that was not checked one way or the other.
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
papt_update
# shellcheck disable=SC2046
listed=$(apt-cache $(papt_opts) showsrc qemu 2>/dev/null |
         sed -n 's/^Version: //p' | grep -E '^1:11\.1\.[0-9]+' |
         sort -u | sort -rV || true)

# 1. What the signed indexes list, newest first, from the cache or apt.
# A version the mirror did not serve is tried again after an hour.
for ver in $listed; do
    dir=$(cached "$ver") && done_with "$dir"
    miss=$CACHE/.unserved-$(upstream_of "$ver")-${ver##*-}
    [ -n "$(find "$miss" -mmin -60 2>/dev/null)" ] && continue
    msg "fetching Debian's qemu source package $ver with apt-get source"
    rm -rf "$dl" && mkdir -p "$dl"
    # shellcheck disable=SC2046
    if (cd "$dl" && apt-get $(papt_opts) -qq source --download-only \
            "qemu=$ver") >&2; then
        unpack "$ver" "apt-get source, checked against the signed index" \
            "$CACHE/qemu-$(upstream_of "$ver")"
        done_with "$(cached "$ver")"
    fi
    warn "the mirror does not serve qemu $ver, which the index lists"
    touch "$miss"
done

# 2. The pinned version, by URL, against the sums in the repository
[ -n "$PIN" ] || die "no '# version:' line in $SUMS"
dir=$(cached "$PIN") && done_with "$dir"
warn "no qemu 11.1.x source package that the index lists is served${listed:+ (listed: $(echo $listed))}; fetching the pinned $PIN by URL"
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
