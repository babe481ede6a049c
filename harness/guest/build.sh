#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux test guest, from Debian's packages only, cached in build/guest:
# a 6.12 kernel from bookworm-backports (zoned virtio-blk needs Linux 6.3)
# and an initramfs with busybox and util-linux's blkzone.  Prints nothing;
# build/guest/vmlinuz and build/guest/initrd.cpio are the result.

. "$(dirname "$0")/../common.sh"

G=$BUILD/guest
KVER_PKG=${GUEST_KERNEL_PKG:-linux-image-amd64}
[ -f "$G/.complete" ] && exit 0

msg "building the test guest in $G"
rm -rf "$G.tmp" && mkdir -p "$G.tmp/debs"
papt_update
# shellcheck disable=SC2046
kpkg=$(apt-cache $(papt_opts) depends "$KVER_PKG/bookworm-backports" 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-6\.[0-9.+a-z-]*\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || die "no 6.x kernel package behind $KVER_PKG in bookworm-backports"
# shellcheck disable=SC2046
(cd "$G.tmp/debs" && apt-get $(papt_opts) -qq download "$kpkg" busybox-static) >&2 ||
    die "could not download $kpkg and busybox-static"

k=$G.tmp/kernel
mkdir -p "$k"
dpkg-deb -x "$G.tmp"/debs/linux-image-*.deb "$k"
cp "$k"/boot/vmlinuz-* "$G.tmp/vmlinuz"
kver=$(ls "$k/lib/modules")

r=$G.tmp/root
mkdir -p "$r"/{bin,sbin,dev,proc,sys,tmp,lib/modules,usr/sbin,lib64}
dpkg-deb --fsys-tarfile "$G.tmp"/debs/busybox-static_*.deb |
    tar -x -C "$G.tmp" ./bin/busybox
cp "$G.tmp/bin/busybox" "$r/bin/busybox"
for m in drivers/block/virtio_blk; do
    xz -dc "$k/lib/modules/$kver/kernel/$m.ko.xz" > "$r/lib/modules/$(basename "$m").ko"
done
# blkzone from the host's util-linux, with what it links
cp /usr/sbin/blkzone "$r/usr/sbin/"
for lib in $(ldd /usr/sbin/blkzone | grep -o '/lib[^ ]*'); do
    mkdir -p "$r$(dirname "$lib")"
    cp -L "$lib" "$r$lib"
done
cp "$(dirname "$0")/init" "$r/init"
chmod +x "$r/init"
(cd "$r" && find . | cpio -o -H newc --quiet) > "$G.tmp/initrd.cpio"
rm -rf "$k" "$r" "$G.tmp/bin" "$G.tmp/debs"
echo "$kpkg" > "$G.tmp/.complete"
rm -rf "$G" && mv "$G.tmp" "$G"
