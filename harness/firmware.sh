#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Firmware for a built qemu-system-x86_64 in meson build directory OBJ.
# usage: firmware.sh OBJ

. "$(dirname "$0")/common.sh"
OBJ=${1:?usage: firmware.sh OBJ}

# x86 option ROMs (linuxboot_dma.bin, ...) from QEMU's own sources.
make -s -C "$OBJ/pc-bios/optionrom" >&2

# Firmware: SeaBIOS and its VGA BIOS from Debian's seabios package, the
# default NICs' ROMs from ipxe-qemu, the option ROMs built above.  QEMU run from its build tree finds them in
# qemu-bundle/<datadir>.
datadir=$(sed -n "s/^#define CONFIG_QEMU_DATADIR \"\(.*\)\"$/\1/p" "$OBJ/config-host.h")
fw=$OBJ/qemu-bundle$datadir
mkdir -p "$fw"
for f in bios.bin bios-256k.bin vgabios-stdvga.bin; do
    ln -sf "/usr/share/seabios/$f" "$fw/$f"
done
for f in /usr/lib/ipxe/qemu/*.rom "$OBJ"/pc-bios/optionrom/*.bin; do
    ln -sf "$f" "$fw/$(basename "$f")"
done
