#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Turn the commits of build/devtree since "pristine" into patches/ and
# patches/series, one patch a commit, in order.

. "$(dirname "$0")/common.sh"

DEV=$BUILD/devtree
[ -d "$DEV/.git" ] || die "no $DEV: run 'make devtree' first"
[ -z "$(git -C "$DEV" status --porcelain --untracked-files=no)" ] ||
    die "$DEV has uncommitted changes: commit them first"

new=$(mktemp -d)
trap 'rm -rf "$new"' EXIT
git -C "$DEV" format-patch -q --no-signature --zero-commit -o "$new" pristine..HEAD
series_patches | while read -r p; do rm -f "$TOP/patches/$p"; done
{
    echo "# Patches to QEMU files, applied in this order."
    for p in "$new"/*.patch; do
        [ -e "$p" ] || continue
        cp "$p" "$TOP/patches/"
        basename "$p"
    done
} > "$TOP/patches/series"
msg "exported $(series_patches | wc -l) patches to patches/"
