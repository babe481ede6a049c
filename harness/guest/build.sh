#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux test guest, from Debian's packages only, cached in build/guest:
# a 6.12 kernel from bookworm-backports (zoned virtio-blk needs Linux 6.3)
# and an initramfs made here: busybox, util-linux (blkzone, blkdiscard),
# fio 3.33 with its zoned suite t/zbd from Debian's fio source package,
# f2fs-tools,
# btrfs-progs, zonefs-tools, nvme-cli 2.3 (nvme zns, io-passthru), GNU
# bash/grep/sed/coreutils for the fio suite (in /gnu/bin), and the kernel
# modules the tests load with `loadmod`.
# build/guest/vmlinuz and build/guest/initrd.cpio are the result.

. "$(dirname "$0")/../common.sh"

G=$BUILD/guest
# The cache is good while this script and what it puts in the guest are
RECIPE=$(cd "$(dirname "$0")" && cat build.sh init loadmod | sha256sum | cut -c1-16)
KVER_PKG=${GUEST_KERNEL_PKG:-linux-image-amd64}
[ "$(sed -n 1p "$G/.complete" 2>/dev/null)" = "recipe $RECIPE" ] && exit 0

# Userspace, all from bookworm but zonefs-tools: bookworm has none, and the
# archive serves trixie's binary package but not its source.
PKGS="busybox-static/bookworm fio/bookworm bash/bookworm grep/bookworm
      sed/bookworm coreutils/bookworm util-linux/bookworm
      f2fs-tools/bookworm btrfs-progs/bookworm kmod/bookworm
      nvme-cli/bookworm"
# Modules the tests may load (with what they depend on)
MODS="virtio_blk nvme null_blk f2fs btrfs zonefs"

msg "building the test guest in $G"
rm -rf "$G.tmp" && mkdir -p "$G.tmp/debs" "$G.tmp/src"
papt_update
# shellcheck disable=SC2046
kpkg=$(apt-cache $(papt_opts) depends "$KVER_PKG/bookworm-backports" 2>/dev/null |
       sed -n 's/^ *Depends: \(linux-image-6\.[0-9.+a-z-]*\)$/\1/p' | head -n1)
[ -n "$kpkg" ] || die "no 6.x kernel package behind $KVER_PKG in bookworm-backports"
# The shared libraries of those packages, from bookworm
# shellcheck disable=SC2046,SC2086
libs=$(apt-cache $(papt_opts) depends --recurse --no-recommends --no-suggests \
           --no-conflicts --no-breaks --no-replaces --no-enhances \
           $PKGS 2>/dev/null |
       grep -E '^(lib|zlib)[^ ]*$' | grep -vE -- '-(perl|common|data)$' |
       sed 's|$|/bookworm|' | sort -u)
# shellcheck disable=SC2046,SC2086
(cd "$G.tmp/debs" &&
 apt-get $(papt_opts) -qq download "$kpkg" $PKGS $libs &&
 cd ../src && apt-get $(papt_opts) -qq source --download-only fio/bookworm) >&2 ||
    die "could not download the guest's packages"
papt_update trixie
# shellcheck disable=SC2046
(cd "$G.tmp/debs" && apt-get $(papt_opts "$PAPT/trixie") -qq download zonefs-tools) >&2 ||
    die "could not download zonefs-tools from trixie"

s=$G.tmp/sys     # every package unpacked
r=$G.tmp/root    # what goes into the initramfs
mkdir -p "$s" "$r"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib/modules,usr/bin,usr/sbin,lib64,gnu/bin}
for d in "$G.tmp"/debs/*.deb; do
    dpkg-deb -x "$d" "$s"
done
cp "$s"/boot/vmlinuz-* "$G.tmp/vmlinuz"
kver=$(ls "$s/lib/modules")

# Libraries: what the ELF files ask for (DT_NEEDED), found in the unpacked
# packages, copied to the guest's multiarch directory.
LIBDIRS="$s/lib/x86_64-linux-gnu $s/usr/lib/x86_64-linux-gnu
         $(find "$s/usr/lib/x86_64-linux-gnu" -mindepth 1 -maxdepth 1 -type d)"
ML=$r/lib/x86_64-linux-gnu
mkdir -p "$ML"
needs() {  # needs ELF...: copy the libraries the ELF files need, recursively
    local f n d found
    for f in "$@"; do
        for n in $(readelf -d "$f" 2>/dev/null |
                   sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p'); do
            [ -e "$ML/$n" ] && continue
            found=
            for d in $LIBDIRS; do
                if [ -e "$d/$n" ]; then
                    found=$d/$n
                    break
                fi
            done
            [ -n "$found" ] || die "guest: no $n (needed by ${f#"$s"}) in the packages"
            cp -L "$found" "$ML/$n"
            needs "$ML/$n"
        done
    done
}
install_bin() {  # install_bin DESTDIR FILE...: binaries of the packages
    local dst=$1 f
    shift
    for f in "$@"; do
        [ -e "$s$f" ] || die "guest: no $f in the packages"
        cp -L "$s$f" "$r$dst/"
        needs "$r$dst/$(basename "$f")"
    done
}
cp -L "$s/lib64/ld-linux-x86-64.so.2" "$r/lib64/"
cp "$s/bin/busybox" "$r/bin/busybox"
install_bin /usr/sbin /sbin/blkzone /sbin/blkdiscard /sbin/blockdev \
    /sbin/mkfs.f2fs /sbin/fsck.f2fs /sbin/mkfs.btrfs /usr/sbin/mkzonefs \
    /usr/sbin/nvme
install_bin /usr/bin /usr/bin/fio
# shellcheck disable=SC2046
install_bin /gnu/bin /bin/bash /bin/grep /bin/sed \
    $(dpkg-deb -c "$G.tmp"/debs/coreutils_*.deb |
      awk '$1 ~ /^-..x/ { sub(/^\./, "", $6); print $6 }')

# fio's zoned test suite runs $(dirname $0)/../../fio
tar -xzf "$G.tmp"/src/fio_*.orig.tar.gz -C "$G.tmp/src"
mkdir -p "$r/fio/t"
cp -r "$G.tmp"/src/fio-*/t/zbd "$r/fio/t/"
ln -s /usr/bin/fio "$r/fio/fio"

# Modules, uncompressed, with a list a module in the order they load;
# modprobe of the kmod package resolves dependencies and soft dependencies.
kmod_run() {
    LD_LIBRARY_PATH="$s/lib/x86_64-linux-gnu:$s/usr/lib/x86_64-linux-gnu" "$@"
}
ln -sf kmod "$s/bin/depmod"
ln -sf kmod "$s/bin/modprobe"
kmod_run "$s/bin/depmod" -b "$s" "$kver" ||
    die "guest: depmod failed on the kernel's modules"
for m in $MODS; do
    kmod_run "$s/bin/modprobe" -d "$s" -S "$kver" --show-depends "$m" |
        sed -n 's/^insmod \([^ ]*\).*/\1/p' > "$G.tmp/deps"
    [ -s "$G.tmp/deps" ] || die "guest: no module $m in $kpkg"
    while read -r ko; do
        n=$(basename "$ko" .ko.xz)
        [ -e "$r/lib/modules/$n.ko" ] ||
            xz -dc "$ko" > "$r/lib/modules/$n.ko"
        echo "$n"
    done < "$G.tmp/deps" > "$r/lib/modules/$m.list"
done

cp "$(dirname "$0")/init" "$r/init"
cp "$(dirname "$0")/loadmod" "$r/bin/loadmod"
chmod +x "$r/init" "$r/bin/loadmod"
ln -s /gnu/bin/bash "$r/bin/bash"
(cd "$r" && find . | cpio -o -H newc --quiet) > "$G.tmp/initrd.cpio"
rm -rf "$s" "$r" "$G.tmp/debs" "$G.tmp/src" "$G.tmp/deps"
printf 'recipe %s\n%s\n' "$RECIPE" "$kpkg" > "$G.tmp/.complete"
rm -rf "$G" && mv "$G.tmp" "$G"
