#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# make check-series: check build/series/ (from make series) the way a
# maintainer applies it.  On a fresh copy of the pristine QEMU tree:
#   1. git am the whole series (it must apply exactly: no fuzz, no 3-way);
#   2. scripts/checkpatch.pl on every patch: no error, and each warning
#      listed with its reason in patches/checkpatch-warnings;
#   3. full: build every patch (qemu-img, qemu-io, the unit tests and the
#      qtest the series has so far, and qemu-system-x86_64 where a patch
#      touches hw/), then at the last patch run those unit tests and our
#      qemu-iotests;
#      quick: build the last patch only (the tree that make check tests).
# Prints one line per patch; stops at the first patch that fails, naming
# it and why.
#
# usage: check-series.sh [full|quick]

. "$(dirname "$0")/common.sh"
[ -f "$BUILD/config.sh" ] && . "$BUILD/config.sh"

mode=${1:-full}
case $mode in full|quick) ;; *) die "usage: check-series.sh [full|quick]" ;; esac

SERIES=${SERIES_OUT:-$BUILD/series}
DIR=${CHECK_SERIES_DIR:-$BUILD/check-series}
SRC=$DIR/src
OBJ=$DIR/obj
ALLOWED=$TOP/patches/checkpatch-warnings

ls "$SERIES"/0001-*.patch >/dev/null 2>&1 || die "no series in $SERIES: run 'make series' first"
# A copy: a make series meanwhile does not change what is checked
rm -rf "$DIR/checked"
mkdir -p "$DIR"
cp -r "$SERIES" "$DIR/checked"
patches=$(ls "$DIR"/checked/[0-9][0-9][0-9][0-9]-*.patch | grep -v '/0000-')
total=$(wc -l <<<"$patches")

if [ -n "${QEMU_SRC:-}" ]; then
    pristine=$QEMU_SRC
    check_qemu_tree "$pristine" >/dev/null
else
    pristine=$("$TOP/harness/fetch-qemu.sh")
fi

fail() {  # fail PATCH WHY
    echo "check-series: FAILED at $(basename "$1"): $2"
    exit 1
}

msg "applying $total patches to a fresh copy of QEMU $(cat "$pristine/VERSION")"
rm -rf "$SRC"
mkdir -p "$SRC"
rsync -a --exclude=/.git --exclude=/.complete --exclude=/.harness-inputs \
    "$pristine/" "$SRC/"
g() {
    git -C "$SRC" -c user.name=check-series -c user.email=check-series@localhost \
        -c core.autocrlf=false "$@"
}
g init -q
g add -A
g commit -q -m pristine
g tag pristine
for p in $patches; do
    if ! out=$(g am -q "$p" 2>&1); then
        g am --abort >/dev/null 2>&1 || true
        fail "$p" "git am: $(head -n 3 <<<"$out" | tr '\n' ' ')"
    fi
done
echo "check-series: git am: $total patches applied"

# checkpatch, with the pristine tree's script
allowed() {  # allowed PATCH-STEM WARNING-TEXT
    [ -f "$ALLOWED" ] || return 1
    sed -e 's/[[:space:]]*#.*//' "$ALLOWED" | grep -v '^$' |
        while IFS='|' read -r stem text; do
            stem=$(echo $stem) text=$(echo $text)
            if [ "$stem" = "$1" ] && [[ "$2" == *"$text"* ]]; then
                echo yes
                break
            fi
        done | grep -q yes
}
cp_warn=0
for p in $patches; do
    stem=$(basename "$p" | sed 's/^[0-9]*-//')
    out=$(cd "$SRC" && git show pristine:scripts/checkpatch.pl > "$DIR/checkpatch.pl" &&
          perl "$DIR/checkpatch.pl" --no-color "$p" 2>&1) || true
    errors=$(sed -n 's/^total: \([0-9]*\) errors.*/\1/p' <<<"$out")
    [ -n "$errors" ] || fail "$p" "checkpatch printed no total: $(tail -n 3 <<<"$out" | tr '\n' ' ')"
    if [ "$errors" != 0 ]; then
        grep -A4 '^ERROR' <<<"$out" | head -n 20
        fail "$p" "checkpatch: $errors errors (above)"
    fi
    while read -r w; do
        [ -n "$w" ] || continue
        if allowed "$stem" "$w"; then
            cp_warn=$((cp_warn + 1))
        else
            grep -F -A4 -- "$w" <<<"$out" | head -n 8
            fail "$p" "checkpatch warning with no reason in patches/checkpatch-warnings: $w"
        fi
    done < <(grep '^WARNING: ' <<<"$out" | sed 's/^WARNING: //')
done
echo "check-series: checkpatch: 0 errors; $cp_warn warnings, each with its reason in patches/checkpatch-warnings"

if [ "$mode" = quick ]; then
    # The last patch's tree is build/src, which make check builds and tests
    "$TOP/harness/prepare-tree.sh" "$pristine"
    differ=$(tree_diff "$SRC" "$BUILD/src" 2>&1) ||
        fail "$(tail -n 1 <<<"$patches")" "the last tree is not the tree the harness builds: $(head -n 3 <<<"$differ" | tr '\n' ' ')"
    "$TOP/harness/build.sh" plain >/dev/null 2>"$DIR/build.log" || {
        tail -n 20 "$DIR/build.log"
        fail "$(tail -n 1 <<<"$patches")" "the last patch does not build"
    }
    echo "check-series: the last patch builds (the tree make check tests)"
    echo "check-series: passed (quick: git am, checkpatch, last build)"
    exit 0
fi

# Build every patch, incrementally, in one build directory
. "$TOP/harness/build-config.sh"
msg "configuring QEMU in $OBJ"
g checkout -q pristine
rm -rf "$OBJ"
mkdir -p "$OBJ"
# shellcheck disable=SC2086
(cd "$OBJ" && "$SRC/configure" $CONFIG_ARGS > configure.log 2>&1) || {
    tail -n 20 "$OBJ/configure.log"
    die "QEMU's configure failed"
}
unit=""
i=0
for c in $(g rev-list --reverse pristine..master); do
    i=$((i + 1))
    p=$(sed -n "${i}p" <<<"$patches")
    g checkout -q "$c"
    # our unit tests that this patch has
    unit=$(cd "$SRC" && for t in $(cd "$TOP" && overlay_files |
                                   sed -n 's|^tests/unit/\(test-.*\)\.c$|\1|p'); do
               if [ -f "tests/unit/$t.c" ]; then echo "tests/unit/$t"; fi
           done)
    # and our qtests
    qtests=$(cd "$SRC" && for t in $(cd "$TOP" && overlay_files |
                                     sed -n 's|^tests/qtest/\(.*-test\)\.c$|\1|p'); do
                 if [ -f "tests/qtest/$t.c" ]; then echo "tests/qtest/$t"; fi
             done)
    targets="qemu-img qemu-io $unit $qtests"
    if [ "$i" = "$total" ]; then
        # what the iotests run
        targets="$targets qemu-nbd storage-daemon/qemu-storage-daemon qemu-system-x86_64"
    elif g diff --name-only "$c^" "$c" | grep -q '^hw/'; then
        targets="$targets qemu-system-x86_64"
    fi
    start=$(date +%s)
    # shellcheck disable=SC2086
    if ! ninja -C "$OBJ" $targets > "$DIR/build-$i.log" 2>&1; then
        grep -m 5 -B2 -A3 'error' "$DIR/build-$i.log" | head -n 20
        fail "$p" "does not build (log: $DIR/build-$i.log)"
    fi
    echo "check-series: $(basename "$p"): builds ($(( $(date +%s) - start )) s: $(echo $targets))"
done

msg "unit tests and qemu-iotests at the last patch"
"$TOP/harness/firmware.sh" "$OBJ"
for t in $unit; do
    "$OBJ/$t" > "$DIR/$(basename "$t").log" 2>&1 ||
        fail "$p" "unit test $(basename "$t") fails (log: $DIR/$(basename "$t").log)"
done
echo "check-series: unit tests pass: $(echo $unit)"
for f in "$TOP"/tests/qemu-iotests/tests/zoned-qcow2*; do
    cmp -s "$f" "$SRC/tests/qemu-iotests/tests/$(basename "$f")" ||
        fail "$p" "the series' $(basename "$f") is not the repository's"
done
res=$("$TOP/harness/iotests.sh" "$OBJ" -qcow2 -g zoned) ||
    fail "$p" "qemu-iotests did not run"
bad=$(awk '$2 == "fail" {print $1}' <<<"$res")
[ -z "$bad" ] || fail "$p" "qemu-iotests fail: $(echo $bad)"
echo "check-series: qemu-iotests -g zoned: $(awk '$2 == "pass"' <<<"$res" | wc -l) pass, $(awk '$2 == "skip"' <<<"$res" | wc -l) skip"
echo "check-series: passed (full: git am, checkpatch, $total builds, tests)"
