#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build QEMU with this series: dependencies, source, patched tree, meson
# configure (once), ninja (incremental), firmware, and the links in build/.
#
# usage: build.sh [plain|san]   (default: what ./configure chose)

. "$(dirname "$0")/common.sh"
[ -f "$BUILD/config.sh" ] && . "$BUILD/config.sh"

flavour=${1:-${DEFAULT_FLAVOUR:-plain}}
case $flavour in
plain) OBJ=$BUILD/obj; extra="" ;;
san)   OBJ=$BUILD/obj-san; extra="--enable-asan --enable-ubsan" ;;
*) die "unknown build flavour '$flavour' (plain or san)" ;;
esac

"$TOP/harness/deps.sh"

if [ -n "${QEMU_SRC:-}" ]; then
    pristine=$QEMU_SRC
    check_qemu_tree "$pristine" >/dev/null
else
    pristine=$("$TOP/harness/fetch-qemu.sh")
fi
"$TOP/harness/prepare-tree.sh" "$pristine"

. "$TOP/harness/build-config.sh"

# A build directory is for one configuration of one QEMU version: another
# base's generated files would look newer than its sources
key="QEMU $(cat "$BUILD/src/VERSION"): $CONFIG_ARGS"
if [ ! -f "$OBJ/build.ninja" ] || [ ! -f "$OBJ/pc-bios/optionrom/config.mak" ] || [ "$(cat "$OBJ/.harness-config" 2>/dev/null)" != "$key" ]; then
    msg "configuring QEMU in $OBJ"
    rm -rf "$OBJ"
    mkdir -p "$OBJ"
    # shellcheck disable=SC2086
    if ! (cd "$OBJ" && "$BUILD/src/configure" $CONFIG_ARGS > configure.log 2>&1); then
        tail -n 30 "$OBJ/configure.log" >&2
        mv "$OBJ" "$OBJ.failed.$$" && rm -rf "$OBJ.failed.$$"
        die "QEMU's configure failed (log above)"
    fi
    echo "$key" > "$OBJ/.harness-config"
fi

TARGETS="qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon
         qemu-system-x86_64"
msg "building QEMU ($flavour) in $OBJ"
# shellcheck disable=SC2086
ninja -C "$OBJ" $TARGETS ${EXTRA_TARGETS:-} >&2
"$TOP/harness/firmware.sh" "$OBJ"

if [ "$flavour" = "${DEFAULT_FLAVOUR:-plain}" ]; then
    for t in $TARGETS; do
        ln -sfn "$(basename "$OBJ")/$t" "$BUILD/$(basename "$t")"
    done
fi
