#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Build the patched QEMU tree build/src from a pristine QEMU tree (argument 1):
# copy it, add the overlay, apply patches/series in order, exactly (no fuzz:
# what git am takes, make check-series).  The work happens
# in a staging copy; only a tree where every patch applied is synced into
# build/src, file by file by content, so unchanged files keep their mtimes and
# the incremental build recompiles only what changed.

. "$(dirname "$0")/common.sh"

SRC=$(cd "${1:?usage: prepare-tree.sh PRISTINE-QEMU-DIR}" && pwd)
OUT=$BUILD/src
STAGE=$BUILD/src.stage
check_qemu_tree "$SRC" >/dev/null

inputs() {
    echo "pristine $SRC $(cat "$SRC/VERSION")"
    # A tree from our cache is immutable once complete; any other tree may
    # change under us, so it is always staged again.
    cat "$SRC/.complete" 2>/dev/null || date +%s.%N
    (cd "$TOP" && overlay_files | xargs -r sha256sum)
    series_patches | while read -r p; do
        sha256sum "$TOP/patches/$p" 2>/dev/null || echo "missing $p"
    done
}
sum=$(inputs | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/.harness-inputs" ] && [ "$(cat "$OUT/.harness-inputs")" = "$sum" ]; then
    exit 0
fi

msg "preparing the patched QEMU tree in $OUT"
rm -rf "$STAGE"
mkdir -p "$STAGE"
# Hard links are safe: patch(1) and cp --remove-destination write new files.
cp -al "$SRC/." "$STAGE/"
rm -f "$STAGE/.complete" "$STAGE/.harness-inputs"

(cd "$TOP" && overlay_files) | while read -r f; do
    if [ -e "$STAGE/$f" ]; then
        rm -rf "$STAGE"
        die "overlay file $f already exists in QEMU's tree: change QEMU's files through patches/"
    fi
    mkdir -p "$STAGE/$(dirname "$f")"
    cp -p --remove-destination "$TOP/$f" "$STAGE/$f"
done

series_patches | while read -r p; do
    if [ ! -f "$TOP/patches/$p" ]; then
        rm -rf "$STAGE"
        die "patches/series names $p, but patches/$p does not exist"
    fi
    if ! out=$(cd "$STAGE" && patch -p1 --batch --forward --fuzz=0 -s < "$TOP/patches/$p" 2>&1); then
        rm -rf "$STAGE"
        files=$(sed -n 's/^patching file //p; s/.*saving rejects to file \(.*\)\.rej/\1/p' <<<"$out" |
                sort -u | tr '\n' ' ')
        printf '%s\n' "$out" >&2
        die "patch patches/$p does not apply (file: ${files:-see above}); $OUT was left as it was"
    fi
done

mkdir -p "$OUT"
rsync -a --checksum --delete --exclude=/.harness-inputs "$STAGE/" "$OUT/"
rm -rf "$STAGE"
echo "$sum" > "$OUT/.harness-inputs"
