#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Make build/devtree: a git work tree of the patched QEMU for editing QEMU's
# own files.  Its first commit is the pristine tree (tag "pristine"), then one
# commit a patch of patches/series.  The overlay's files are symlinks to this
# repository (git in the devtree ignores them), so edit them in either place.
# Commit changes to QEMU's files there, then `make export-patches`.

. "$(dirname "$0")/common.sh"
[ -f "$BUILD/config.sh" ] && . "$BUILD/config.sh"

DEV=$BUILD/devtree
if [ -n "${QEMU_SRC:-}" ]; then
    pristine=$QEMU_SRC
    check_qemu_tree "$pristine" >/dev/null
else
    pristine=$("$TOP/harness/fetch-qemu.sh")
fi
if [ -d "$DEV/.git" ] && [ -n "$(git -C "$DEV" status --porcelain)" -o \
     "$(git -C "$DEV" rev-list --count pristine..HEAD)" != "$(series_patches | wc -l)" ]; then
    die "$DEV has uncommitted changes or commits not exported; run 'make export-patches' or remove it"
fi

msg "creating $DEV"
rm -rf "$DEV"
mkdir -p "$DEV"
rsync -a --exclude=/.git --exclude=/.complete "$pristine/" "$DEV/"
# Commits made here carry this repository's git identity.
name=$(git -C "$TOP" config user.name || echo devtree)
email=$(git -C "$TOP" config user.email || echo devtree@localhost)
g() { git -C "$DEV" -c user.name="$name" -c user.email="$email" "$@"; }
g_local() { git -C "$DEV" config "$1" "$2"; }
g init -q
g_local user.name "$name"
g_local user.email "$email"
g add -A
g commit -q -m "pristine QEMU $(cat "$pristine/VERSION")"
g tag pristine
series_patches | while read -r p; do
    if ! g am -q --keep-cr "$TOP/patches/$p" 2>/dev/null; then
        g am --abort 2>/dev/null || true
        g apply --index "$TOP/patches/$p" ||
            die "patch patches/$p does not apply to the pristine tree"
        g commit -q -m "${p%.patch}"
    fi
done
(cd "$TOP" && overlay_files) | while read -r f; do
    mkdir -p "$DEV/$(dirname "$f")"
    ln -s "$TOP/$f" "$DEV/$f"
    echo "/$f" >> "$DEV/.git/info/exclude"
done
msg "devtree ready: $DEV ($(series_patches | wc -l) patches applied)"
