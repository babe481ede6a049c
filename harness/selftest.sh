#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Self-tests of the harness's failure paths, on a fake QEMU tree in a
# temporary directory.  Prints "<name> pass|fail" a test.

. "$(dirname "$0")/common.sh"

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

result() { if [ "$2" = 0 ]; then echo "$1 pass"; else echo "$1 fail"; fi; }
# expect_fail NAME PATTERN CMD...: CMD must fail and say PATTERN.
expect_fail() {
    local name=$1 pat=$2 out rc=0
    shift 2
    out=$("$@" 2>&1) && rc=1
    grep -q -- "$pat" <<<"$out" || { rc=1; printf '%s: expected "%s" in:\n%s\n' "$name" "$pat" "$out" >&2; }
    return $rc
}

# A fake pristine QEMU 11.1 tree and a copy of the harness beside patches/.
fake=$T/qemu
mkdir -p "$fake/block"
echo 11.1.99 > "$fake/VERSION"
printf 'int a;\nint b;\n' > "$fake/block/qcow2.c"
printf '#!/bin/sh\n' > "$fake/configure" && chmod +x "$fake/configure"
proj=$T/proj
mkdir -p "$proj/patches" "$proj/block"
cp -r "$TOP/harness" "$proj/"
good='--- a/block/qcow2.c
+++ b/block/qcow2.c
@@ -1,2 +1,2 @@
 int a;
-int b;
+int c;'
bad='--- a/block/qcow2.c
+++ b/block/qcow2.c
@@ -1,2 +1,2 @@
 int a;
-int nothing_like_this;
+int d;'
echo "$good" > "$proj/patches/0001-good.patch"
echo "$bad" > "$proj/patches/0002-bad.patch"
echo "new file" > "$proj/block/new-file.c"

prep() { BUILD=$proj/build "$proj/harness/prepare-tree.sh" "$fake"; }

# 1. Patches and overlay applied in order.
echo 0001-good.patch > "$proj/patches/series"
rc=0
prep >/dev/null 2>&1 && grep -q 'int c;' "$proj/build/src/block/qcow2.c" &&
    [ -f "$proj/build/src/block/new-file.c" ] &&
    grep -q 'int b;' "$fake/block/qcow2.c" || rc=1
result prepare-applies-series $rc

# 2. A patch that does not apply: error names patch and file; the tree
#    that was there is left as it was.
before=$(cd "$proj/build/src" && find . -type f | sort | xargs sha256sum)
printf '0001-good.patch\n0002-bad.patch\n' > "$proj/patches/series"
rc=0
expect_fail bad-patch "patch patches/0002-bad.patch does not apply (file: block/qcow2.c" prep || rc=1
after=$(cd "$proj/build/src" && find . -type f | sort | xargs sha256sum)
[ "$before" = "$after" ] && [ ! -e "$proj/build/src.stage" ] || rc=1
result prepare-bad-patch-leaves-tree $rc

# 3. The next run after a fixed series works again.
echo 0001-good.patch > "$proj/patches/series"
echo "int e;" >> "$proj/block/new-file.c"
rc=0
prep >/dev/null 2>&1 && grep -q 'int e;' "$proj/build/src/block/new-file.c" || rc=1
result prepare-recovers $rc

# 4. An overlay file may not replace a QEMU file.
mkdir -p "$proj/block" && echo x > "$proj/block/qcow2.c"
rc=0
expect_fail overlay-clash "overlay file block/qcow2.c already exists in QEMU's tree" prep || rc=1
rm -f "$proj/block/qcow2.c"
result prepare-overlay-clash $rc

# 5. ./configure --qemu-src: not a QEMU tree, wrong version, good tree.
rc=0
expect_fail not-qemu "'$T/proj/patches' is not a QEMU source tree" \
    env BUILD="$proj/build" "$TOP/configure" --qemu-src="$proj/patches" || rc=1
result configure-not-a-qemu-tree $rc
echo 10.0.13 > "$fake/VERSION"
rc=0
expect_fail old-qemu "is QEMU 10.0.13; this series needs QEMU 11.1.x" \
    env BUILD="$proj/build" "$TOP/configure" --qemu-src="$fake" || rc=1
result configure-wrong-version $rc
echo 11.1.99 > "$fake/VERSION"
rc=0
BUILD=$proj/build "$TOP/configure" --qemu-src="$fake" >/dev/null 2>&1 &&
    grep -q "QEMU_SRC='$fake'" "$proj/build/config.sh" || rc=1
result configure-qemu-src $rc

# 7. make series: without a git identity it stops and says so; with one,
#    each overlay file arrives in the patch patches/new-files names, with
#    the identity as author and sign-off; an overlay file that no patch
#    adds is an error that names it.
cat > "$proj/patches/0001-good.patch" <<EOF
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Someone Else <else@example.org>
Date: Wed, 2 Dec 2026 00:00:00 +0000
Subject: [PATCH] block: a good change

Why it is good.

Signed-off-by: Someone Else <else@example.org>
---
$good
EOF
echo 0001-good.patch > "$proj/patches/series"
printf 'good.patch:\n    block/new-file.c\n' > "$proj/patches/new-files"
echo "Subject of the series" > "$proj/patches/cover-letter.txt"
series() {
    env -u GIT_AUTHOR_NAME -u GIT_AUTHOR_EMAIL GIT_CONFIG_GLOBAL=/dev/null \
        GIT_CONFIG_NOSYSTEM=1 BUILD=$proj/build QEMU_SRC=$fake "$@" \
        "$proj/harness/series.sh"
}
rc=0
expect_fail no-identity "make series needs a git identity" series || rc=1
result series-needs-identity $rc
rc=0
if series GIT_AUTHOR_NAME="A Tester" GIT_AUTHOR_EMAIL=tester@example.org \
        >/dev/null 2>&1; then
    s=$proj/build/series/0001-block-a-good-change.patch
    grep -q '^From: A Tester <tester@example.org>' "$s" &&
        grep -q '^Signed-off-by: A Tester <tester@example.org>' "$s" &&
        ! grep -q 'Someone Else' "$s" && grep -q '^+int c;' "$s" &&
        grep -q '^+++ b/block/new-file.c' "$s" &&
        grep -q 'Subject of the series' "$proj/build/series/0000-cover-letter.patch" ||
        rc=1
else
    rc=1
fi
result series-new-files-and-identity $rc
echo "int f;" > "$proj/block/unmapped.c"
rc=0
expect_fail unmapped "overlay files that no patch adds.*block/unmapped.c" \
    series GIT_AUTHOR_NAME="A Tester" GIT_AUTHOR_EMAIL=tester@example.org || rc=1
rm -f "$proj/block/unmapped.c"
result series-unmapped-file $rc

# 6. Missing packages without root: an error that lists them.
rc=0
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    chmod -R a+rX "$T"
    expect_fail no-root "missing Debian packages:.*no-such-package-zz" \
        env BUILD="$T/nobody" HARNESS_EXTRA_PKGS=no-such-package-zz \
        setpriv --reuid=65534 --regid=65534 --clear-groups \
        "$proj/harness/deps.sh" || rc=1
    result deps-without-root $rc
fi
