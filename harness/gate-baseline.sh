#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The regression gate's baseline: QEMU's own `check -qcow2 -g quick` on the
# UNPATCHED tree that the build uses (Debian's source, or --qemu-src),
# built with the same configuration in build/obj-pristine.  Writes
# harness/iotests-quick-baseline.new: the counts, then every test that
# does not pass, with its reason.  Read it (the reasons are the tests' own
# "not run" messages, or "fail"), then move it over
# harness/iotests-quick-baseline.  Takes a build (mostly ccache hits after
# `make`) and a run of the quick group: about 15 minutes on 2 cores.

. "$(dirname "$0")/common.sh"
[ -f "$BUILD/config.sh" ] && . "$BUILD/config.sh"

"$TOP/harness/deps.sh"
if [ -n "${QEMU_SRC:-}" ]; then
    pristine=$QEMU_SRC
else
    pristine=$("$TOP/harness/fetch-qemu.sh")
fi
ver=$(check_qemu_tree "$pristine")
SRC=$BUILD/src-pristine
OBJ=$BUILD/obj-pristine
OUT=$TOP/harness/iotests-quick-baseline.new

msg "building the unpatched QEMU $ver in $OBJ"
mkdir -p "$SRC"
rsync -a --delete --exclude=/.complete --exclude=/.git "$pristine/" "$SRC/"
extra=""
. "$TOP/harness/build-config.sh"
rm -rf "$OBJ" && mkdir -p "$OBJ"
# shellcheck disable=SC2086
(cd "$OBJ" && "$SRC/configure" $CONFIG_ARGS > configure.log 2>&1) || {
    tail -n 30 "$OBJ/configure.log" >&2
    die "QEMU's configure failed (log above)"
}
ninja -C "$OBJ" qemu-img qemu-io qemu-nbd storage-daemon/qemu-storage-daemon \
    qemu-system-x86_64 >&2
"$TOP/harness/firmware.sh" "$OBJ"

msg "qemu-iotests -qcow2 -g quick on the unpatched tree"
res=$(mktemp)
trap 'rm -f "$res"' EXIT
"$TOP/harness/iotests.sh" "$OBJ" -qcow2 -g quick > "$res"
total=$(wc -l < "$res")
passed=$(grep -c ' pass$' "$res" || true)
skipped=$(grep -c ' skip' "$res" || true)
failed=$((total - passed - skipped))
{
    cat <<EOT
# Baseline of the qcow2 regression gate (harness/check.sh gate).
# \`tests/qemu-iotests/check -qcow2 -g quick\` on the UNPATCHED QEMU $ver
# tree, built by harness/gate-baseline.sh on Debian 12 (2 cores, root),
# measured $(date -u +%F): $passed passed, $skipped not run, $failed failed.
# Below: every test that does not pass there, with its reason (the test's
# own "not run" message, or "fail").  The gate fails on any other test that
# does not pass with the series applied.
# tests: $total
EOT
    grep -v ' pass$' "$res" | sed 's/ *$//' | sort
} > "$OUT"
msg "wrote $OUT: $passed passed, $skipped not run, $failed failed of $total"
