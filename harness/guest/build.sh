#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Linux test guests, from Debian's packages only.  GUEST picks one:
#   lts (default), cached in build/guest: a 6.12 kernel from
#        bookworm-backports (zoned virtio-blk needs Linux 6.3) and an
#        initramfs made here: busybox, util-linux (blkzone, blkdiscard),
#        fio 3.33 with its zoned suite t/zbd from Debian's fio source
#        package, f2fs-tools, btrfs-progs, zonefs-tools, nvme-cli 2.3 (nvme
#        zns, io-passthru), GNU bash/grep/sed/coreutils for the fio suite
#        (in /gnu/bin), and the kernel modules the tests load with
#        `loadmod`;
#   new, cached in build/guest-new: the same from Debian sid, its newest
#        kernel (7.x) and tools: xfsprogs (zoned XFS), fio 3.41 with t/zbd
#        from its source tarball, nvme-cli 2.16, util-linux 2.42, sg3-utils
#        (fio's zoned suite asks sg_inq), zonefs-tools 1.7, btrfs-progs,
#        f2fs-tools.  sid moves every day: its files are pinned in
#        new.lock (path in the archive and SHA-256); a pinned file the
#        mirror no longer serves is replaced by the archive's current
#        version of that package, checked by apt against the signed index,
#        and the build says so.  `GUEST=new build.sh --lock` pins the
#        archive's current versions anew.
# build/guest*/vmlinuz and build/guest*/initrd.cpio are the result.

. "$(dirname "$0")/../common.sh"

GUEST=${GUEST:-lts}
LOCK=$TOP/harness/guest/new.lock
case $GUEST in
lts) G=$BUILD/guest
     # Userspace, all from bookworm but zonefs-tools: bookworm has none,
     # and the archive serves trixie's binary package but not its source.
     PKGS="busybox-static/bookworm fio/bookworm bash/bookworm grep/bookworm
           sed/bookworm coreutils/bookworm util-linux/bookworm
           f2fs-tools/bookworm btrfs-progs/bookworm kmod/bookworm
           nvme-cli/bookworm"
     MODS="virtio_blk nvme null_blk f2fs btrfs zonefs"
     lockfile= ;;
new) G=$BUILD/guest-new
     PKGS="busybox-static fio bash grep sed coreutils util-linux
           util-linux-extra mount
           f2fs-tools btrfs-progs kmod nvme-cli xfsprogs sg3-utils
           zonefs-tools"
     MODS="virtio_blk nvme null_blk f2fs btrfs zonefs xfs"
     lockfile=$LOCK ;;
*) die "GUEST: lts or new, not '$GUEST'" ;;
esac

# new_resolve: the packages of the new guest, as apt-cache show prints
# them (sid's candidates): the kernel, PKGS and their libraries
new_resolve() {
    local o kpkg libs
    o=$(papt_opts "$PAPT/sid")
    # shellcheck disable=SC2086
    kpkg=$(apt-cache $o depends linux-image-amd64 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-[7-9]\.[0-9.+a-z-]*\)$/\1/p' | head -n1)
    [ -n "$kpkg" ] || die "no 7.x kernel package behind linux-image-amd64 in sid"
    # sid splits the kernel: the image (vmlinuz) and its modules
    # shellcheck disable=SC2086
    kpkg="$kpkg $(apt-cache $o depends "$kpkg" 2>/dev/null |
                  sed -n 's/^ *Depends: \(linux-\(binary\|modules\)-[0-9][^ ]*\)$/\1/p')"
    # shellcheck disable=SC2086
    libs=$(apt-cache $o depends --recurse --no-recommends --no-suggests \
               --no-conflicts --no-breaks --no-replaces --no-enhances \
               $PKGS 2>/dev/null |
           grep -E '^(lib|zlib)[^ ]*$' | grep -vE -- '-(perl|common|data)$' |
           sort -u)
    # shellcheck disable=SC2086
    apt-cache $o show --no-all-versions $kpkg $PKGS $libs
}

if [ "${1:-}" = --lock ]; then
    [ "$GUEST" = new ] || die "--lock: only GUEST=new is pinned"
    papt_update sid
    {
        echo "# The newest test guest's files (harness/guest/build.sh, GUEST=new):"
        echo "# path in the Debian archive, SHA-256.  Made by"
        echo "# \`GUEST=new harness/guest/build.sh --lock\`."
        new_resolve | awk '/^Filename: / { f = $2 } /^SHA256: / { print f, $2 }' | sort
        # fio's zoned suite: only in the source
        apt-cache $(papt_opts "$PAPT/sid") showsrc fio 2>/dev/null |
            awk '/^Directory: / { d = $2 }
                 /^Checksums-Sha256:/ { c = 1; next } /^[^ ]/ { c = 0 }
                 c && $3 ~ /\.orig\.tar\.gz$/ { f = $3; h = $1 }
                 /^$/ && f { exit } END { print d "/" f, h }'
    } > "$LOCK.new"
    grep -q 'linux-binary-' "$LOCK.new" && grep -q 'linux-modules-' "$LOCK.new" &&
        grep -q 'fio_.*orig' "$LOCK.new" ||
        die "--lock: the kernel or fio's source is missing from $LOCK.new"
    mv "$LOCK.new" "$LOCK"
    msg "pinned $(grep -vc '^#' "$LOCK") files in $LOCK"
    exit 0
fi

# The cache is good while this script and what it puts in the guest are
RECIPE=$(cd "$(dirname "$0")" && cat build.sh init loadmod ${lockfile:+"$lockfile"} |
         sha256sum | cut -c1-16)
[ "$(sed -n 1p "$G/.complete" 2>/dev/null)" = "recipe $RECIPE" ] && exit 0

msg "building the test guest ($GUEST) in $G"
rm -rf "$G.tmp" && mkdir -p "$G.tmp/debs" "$G.tmp/src"

# fetch_pinned: the files of new.lock into debs/ and src/, each checked
# against its SHA-256; a package the mirror no longer serves comes from
# sid's signed index instead, at the archive's current version
fetch_pinned() {
    local mirror path sum f dst name
    mirror=$(debian_mirror)
    grep -v '^#' "$LOCK" | while read -r path sum; do
        f=$(basename "$path")
        case $f in
        *.deb) dst=$G.tmp/debs ;;
        *) dst=$G.tmp/src ;;
        esac
        if /usr/lib/apt/apt-helper -qq -o APT::Sandbox::User=root \
               download-file "${mirror%/}/$path" "$dst/$f" "SHA256:$sum" \
               > /dev/null 2>&1 &&
           echo "$sum  $dst/$f" | sha256sum -c --quiet - >/dev/null 2>&1; then
            continue
        fi
        rm -f "$dst/$f"
        name=${f%%_*}
        [ "$dst" = "$G.tmp/debs" ] ||
            die "guest: $path (pinned in $LOCK) is not served, or not as pinned"
        warn "guest: $f (pinned) is not served; sid's current $name instead"
        # shellcheck disable=SC2046
        (cd "$dst" && apt-get $(papt_opts "$PAPT/sid") -qq download "$name") >&2 ||
            die "guest: neither the pinned $f nor sid's $name can be fetched"
    done
}

if [ "$GUEST" = new ]; then
    papt_update sid
    fetch_pinned
    kpkg=$(cd "$G.tmp/debs" && ls linux-modules-*.deb | sed 's/_.*//' | head -n1)
else
    papt_update
    # shellcheck disable=SC2046
    kpkg=$(apt-cache $(papt_opts) depends "linux-image-amd64/bookworm-backports" 2>/dev/null |
           sed -n 's/^ *Depends: \(linux-image-6\.[0-9.+a-z-]*\)$/\1/p' | head -n1)
    [ -n "$kpkg" ] || die "no 6.x kernel package behind linux-image-amd64 in bookworm-backports"
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
fi

s=$G.tmp/sys     # every package unpacked
r=$G.tmp/root    # what goes into the initramfs
mkdir -p "$s" "$r"/{bin,sbin,dev,proc,sys,tmp,mnt,etc,lib/modules,usr/bin,usr/sbin,lib64,gnu/bin}
for d in "$G.tmp"/debs/*.deb; do
    dpkg-deb -x "$d" "$s"
done
# sid's packages ship /usr only (the merged /usr); bookworm's both
for d in bin sbin lib lib64; do
    [ -e "$s/$d" ] || ln -s "usr/$d" "$s/$d"
done
kver=$(ls "$s/lib/modules")
# bookworm's kernel is in /boot, sid's beside its modules
cp "$(ls "$s"/boot/vmlinuz-* "$s/lib/modules/$kver/vmlinuz" 2>/dev/null | head -n1)" \
    "$G.tmp/vmlinuz"

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
    local dst=$1 f p
    shift
    for f in "$@"; do
        # /sbin/x in bookworm may be /usr/sbin/x or /usr/bin/x in sid
        for p in "$s$f" "$s/usr$f" "$s/usr/sbin/${f##*/}" "$s/usr/bin/${f##*/}"; do
            [ -e "$p" ] && break
        done
        [ -e "$p" ] || die "guest: no $f in the packages"
        cp -L "$p" "$r$dst/"
        needs "$r$dst/$(basename "$f")"
    done
}
cp -L "$s/lib64/ld-linux-x86-64.so.2" "$r/lib64/"
cp "$s/bin/busybox" "$r/bin/busybox"
install_bin /usr/sbin /sbin/blkzone /sbin/blkdiscard /sbin/blockdev \
    /sbin/mkfs.f2fs /sbin/fsck.f2fs /sbin/mkfs.btrfs /usr/sbin/mkzonefs \
    /usr/sbin/nvme
install_bin /usr/bin /usr/bin/fio
if [ "$GUEST" = new ]; then
    install_bin /usr/sbin /sbin/mkfs.xfs /sbin/xfs_repair /sbin/xfs_db \
        /sbin/xfs_io
    install_bin /usr/bin /usr/bin/sg_inq
fi
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
# kmod runs on the packages' own C library, through their dynamic loader
# (sid's kmod needs a newer glibc than the machine's).
kmod_run() {  # kmod_run depmod|modprobe ARGS...
    local tool=$1
    shift
    "$s/lib64/ld-linux-x86-64.so.2" \
        --library-path "$s/lib/x86_64-linux-gnu:$s/usr/lib/x86_64-linux-gnu" \
        --argv0 "$tool" "$s/bin/kmod" "$@"
}
kmod_run depmod -b "$s" "$kver" ||
    die "guest: depmod failed on the kernel's modules"
for m in $MODS; do
    kmod_run modprobe -d "$s" -S "$kver" --show-depends "$m" |
        sed -n 's/^insmod \([^ ]*\).*/\1/p' > "$G.tmp/deps"
    [ -s "$G.tmp/deps" ] || die "guest: no module $m in $kpkg"
    while read -r ko; do
        n=$(basename "$ko")
        n=${n%%.ko*}
        if [ ! -e "$r/lib/modules/$n.ko" ]; then
            case $ko in
            *.ko.xz) xz -dc "$ko" ;;
            *.ko.zst) zstd -qdc "$ko" ;;
            *) cat "$ko" ;;
            esac > "$r/lib/modules/$n.ko"
        fi
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
