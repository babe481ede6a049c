#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The main job (make demo): use the built tools on an image in build/demo.
# Until the Linux-guest demo exists, a short qemu-img / qemu-io session.

. "$(dirname "$0")/common.sh"

D=$BUILD/demo
rm -rf "$D" && mkdir -p "$D"
img=$D/disk.qcow2
run() { printf '$ %s\n' "$*"; "$@"; }

run "$BUILD/qemu-img" create -f qcow2 "$img" 64M
run "$BUILD/qemu-io" -f qcow2 -c "write -P 0x5a 0 1M" -c "read -P 0x5a 0 1M" \
    -c "read -P 0 1M 1M" "$img"
run "$BUILD/qemu-img" info "$img"
run "$BUILD/qemu-img" check "$img"
