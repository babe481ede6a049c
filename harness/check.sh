#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The project's test command (make check):
#   1. harness self-tests
#   2. our unit tests and our qemu-iotests (group "zoned"), plain build
#   2b. the series for qemu-devel: make series, then git am on a fresh
#      tree, checkpatch of every patch, and its last tree is the one tested
#      (make check-series also builds every patch)
#   3. the qcow2 regression gate: QEMU's `check -qcow2 -g quick` must pass
#      every test that passes on the unpatched tree (harness/iotests-quick-baseline)
#   4. a Linux guest (TCG) that uses a zoned qcow2 disk over virtio-blk:
#      the fast subset (guest-full: fio's whole zoned suite, the NVMe ZNS
#      and null_blk baselines, btrfs and zonefs too; make check-guest);
#      then the same on the newest guest (Debian sid's Linux 7.x: fio
#      3.41, zoned XFS; harness/guest/check-new.sh)
#   5. our unit tests and qemu-iotests again on the ASan + UBSan build
# Ends with "N passed, N failed, N skipped".
#
# usage: check.sh [all|zoned|series|gate|guest|guest-full|san]

. "$(dirname "$0")/common.sh"
what=${1:-all}
BASELINE=$TOP/harness/iotests-quick-baseline
OUR_GROUP=zoned

passed=0 failed=0 skipped=0
failures=""
# why SUITE:NAME TEXT: kept for the end of the run, where a CI log that
# shows only its last lines still says why something failed
whys=""
why() { whys="$whys  $1:"$'\n'"$(tail -n 12 <<<"$2" | sed 's/^/    /')"$'\n'; }
count() {  # count SUITE NAME pass|fail|skip
    case $3 in
    pass) passed=$((passed + 1)) ;;
    skip|skip:*) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failures="$failures $1:$2" ;;
    esac
}

# Unit tests: tests/unit/test-*.c of the overlay, registered in QEMU's
# tests/unit/meson.build by our patches.
unit_tests() {
    local obj=$1 flavour=$2 t name
    for t in $(cd "$TOP" && overlay_files | grep '^tests/unit/test-.*\.c$' || true); do
        name=$(basename "$t" .c)
        if ninja -C "$obj" "tests/unit/$name" >/dev/null &&
           "$obj/tests/unit/$name" > "$obj/tests/unit/$name.log" 2>&1; then
            echo "unit-$flavour $name pass"; count "unit-$flavour" "$name" pass
        else
            tail -n 20 "$obj/tests/unit/$name.log" >&2 || true
            echo "unit-$flavour $name FAIL"; count "unit-$flavour" "$name" fail
        fi
    done
}

# Run qemu-iotests into a file; a run that did not happen is a failure.
# Our qtests (tests/qtest/*-test.c of the overlay): each test path is a
# result
our_qtests() {
    local obj=$1 flavour=$2 t name log res st path
    for t in $(cd "$TOP" && overlay_files | grep '^tests/qtest/.*-test\.c$' || true); do
        name=$(basename "$t" .c)
        log=$obj/tests/qtest/$name.log
        if ! [ -x "$obj/qemu-system-x86_64" ] ||
           ! ninja -C "$obj" "tests/qtest/$name" >/dev/null; then
            echo "qtest-$flavour $name FAIL"; count "qtest-$flavour" "$name" fail
            continue
        fi
        res=0
        (cd "$obj" && QTEST_QEMU_BINARY=./qemu-system-x86_64 \
            QTEST_QEMU_IMG=./qemu-img timeout 600 \
            "tests/qtest/$name" --tap -k) > "$log" 2>&1 || res=$?
        while read -r st path; do
            [ "$st" = ok ] && echo "qtest-$flavour $path pass" &&
                count "qtest-$flavour" "$path" pass
            [ "$st" = "not" ] && echo "qtest-$flavour $path FAIL" &&
                count "qtest-$flavour" "$path" fail
        done < <(sed -n 's/^\(ok\|not\) [a-z ]*[0-9]* \(\/[^ ]*\).*/\1 \2/p' "$log")
        if [ "$res" != 0 ] || ! grep -q '^ok ' "$log"; then
            tail -n 20 "$log" >&2 || true
            echo "qtest-$flavour $name FAIL (exit $res)"
            count "qtest-$flavour" "$name" fail
        fi
    done
}

run_iotests() {  # run_iotests SUITE OUTFILE ARGS...
    local suite=$1 out=$2
    shift 2
    "$TOP/harness/iotests.sh" "$@" > "$out" || count "$suite" "(qemu-iotests did not run)" fail
}

our_iotests() {
    local obj=$1 flavour=$2 t st reason res
    res=$(mktemp)
    run_iotests "iotests-$flavour" "$res" "$obj" -qcow2 -g "$OUR_GROUP"
    while read -r t st reason; do
        echo "iotests-$flavour $t $st${reason:+ ($reason)}"
        count "iotests-$flavour" "$t" "$st"
    done < "$res"
    rm -f "$res"
}

gate() {
    local obj=$1 res retry log t st reason total expected listed missing
    local suspects=""
    res=$(mktemp)
    retry=$(mktemp)
    log=$(mktemp)
    msg "regression gate: qemu-iotests -qcow2 -g quick (takes a few minutes)"
    IOTESTS_LOG=$log run_iotests gate "$res" "$obj" -qcow2 -g quick
    expected=$(sed -n 's/^# tests: //p' "$BASELINE")
    listed=$(cd "$obj/tests/qemu-iotests" && ./check -n -qcow2 -g quick)
    # A test that printed no result in the parallel run is run again
    # alone, and says what it printed there
    missing=$(for t in $listed; do
                  grep -q "^$t " "$res" || printf ' %s' "$t"
              done)
    if [ -n "$missing" ]; then
        echo "gate: no result from:$missing; what check printed of them:"
        for t in $missing; do
            grep -F -e " $t" "$log" | sed 's/^/gate   /' | head -n 5
        done
        echo "gate: check's last lines:"
        tail -n 5 "$log" | sed 's/^/gate   /'
        # shellcheck disable=SC2086
        IOTESTS_JOBS=1 "$TOP/harness/iotests.sh" "$obj" -qcow2 $missing \
            >> "$res" || true
    fi
    total=$(wc -l < "$res")
    # A test that fails here but passes on the unpatched tree is run
    # again, alone, up to three times: a few of QEMU's tests (153, 161)
    # race with the QEMU processes they start on a loaded machine.  Only a
    # test that never passes counts.
    while read -r t st reason; do
        if [ "$st" != pass ] && ! grep -q "^$t " "$BASELINE"; then
            suspects="$suspects $t"
        fi
    done < "$res"
    for attempt in 1 2 3; do
        [ -n "$suspects" ] || break
        msg "gate: running again, alone (attempt $attempt):$suspects"
        # shellcheck disable=SC2086
        IOTESTS_JOBS=1 "$TOP/harness/iotests.sh" "$obj" -qcow2 $suspects >> "$retry" || true
        suspects=$(for t in $suspects; do
                       grep -q "^$t pass" "$retry" || printf ' %s' "$t"
                   done)
    done
    while read -r t st reason; do
        if [ "$st" = pass ]; then
            count gate "$t" pass
        elif grep -q "^$t " "$BASELINE"; then
            echo "gate $t $st (also on the unpatched tree: $(grep "^$t " "$BASELINE" | cut -d' ' -f3-))"
            count gate "$t" skip
        elif grep -q "^$t pass" "$retry"; then
            echo "gate $t: failed, then passed alone (timing-sensitive test)"
            count gate "$t" pass
        else
            echo "gate $t $st: REGRESSION (passes on the unpatched tree)"
            count gate "$t" fail
        fi
    done < "$res"
    while read -r t st reason; do
        grep -q "^$t pass" "$res" && echo "gate $t passes now (baseline says $st: $reason)"
    done < <(grep -v '^#' "$BASELINE")
    if [ "$total" -lt "$expected" ]; then
        missing=$(for t in $listed; do
                      grep -q "^$t " "$res" || printf '%s,' "$t"
                  done)
        echo "gate: only $total of $expected tests ran"
        count gate "missing-tests(${missing%,})" fail
    fi
    rm -f "$res" "$retry" "$log"
}

case $what in
all|zoned|series|gate|guest|guest-full|san) ;;
*) die "usage: check.sh [all|zoned|series|gate|guest|guest-full|san]" ;;
esac

if [ "$what" = all ]; then
    msg "harness self-tests"
    while read -r t st; do
        echo "harness $t $st"; count harness "$t" "$st"
    done < <("$TOP/harness/selftest.sh")
fi
if [ "$what" != san ]; then
    "$TOP/harness/build.sh" plain
    OBJ=$BUILD/obj
fi
if [ "$what" = all ] || [ "$what" = zoned ]; then
    msg "our unit tests and qemu-iotests (plain build)"
    unit_tests "$OBJ" plain
    our_qtests "$OBJ" plain
    our_iotests "$OBJ" plain
fi
if [ "$what" = all ] || [ "$what" = series ]; then
    # The series for qemu-devel as make series writes it, signed here by
    # a stand-in identity and kept apart from build/series: git am on a
    # fresh tree, checkpatch, the last tree is the one tested here
    msg "the series: git am, checkpatch, last tree (make check-series builds every patch)"
    log=$BUILD/check-series.log
    export CHECK_SERIES_DIR=$BUILD/check-series-quick
    export SERIES_OUT=$CHECK_SERIES_DIR/series
    if GIT_AUTHOR_NAME="make check" GIT_AUTHOR_EMAIL=make-check@localhost \
       "$TOP/harness/series.sh" > "$log" 2>&1 &&
       "$TOP/harness/check-series.sh" quick >> "$log" 2>&1; then
        grep '^check-series:' "$log"
        echo "series quick pass"; count series quick pass
    else
        tail -n 20 "$log"
        why series:quick "$(grep -v '^==> ' "$log")"
        echo "series quick FAIL"; count series quick fail
    fi
fi
if [ "$what" = all ] || [ "$what" = gate ]; then
    gate "$OBJ"
fi
if [ "$what" = all ] || [ "$what" = guest ] || [ "$what" = guest-full ]; then
    gmode=fast
    [ "$what" = guest-full ] && gmode=full
    # guest_suite SUITE SCRIPT: the guest tests of SCRIPT, counted as SUITE
    guest_suite() {
        local res
        res=$(mktemp)
        "$TOP/harness/guest/$2" "$gmode" > "$res" ||
            count "$1" "(guest tests did not run)" fail
        while read -r t st; do
            echo "$1 $t $st"; count "$1" "$t" "$st"
        done < "$res"
        rm -f "$res"
    }
    msg "Linux guest with a zoned virtio-blk disk ($gmode)"
    guest_suite guest check.sh
    msg "the newest Linux guest: Debian sid's kernel, zoned XFS ($gmode)"
    guest_suite guest-new check-new.sh
fi
if [ "$what" = all ] || [ "$what" = san ]; then
    "$TOP/harness/build.sh" san
    msg "our unit tests and qemu-iotests (ASan + UBSan build)"
    # The sanitizers report to files, not into the tests' output (ASan
    # warns once per process about QEMU's coroutine stacks); any error
    # there fails the run, and stops the process at once.
    SANLOG=$BUILD/obj-san/sanitizer-logs
    rm -rf "$SANLOG" && mkdir -p "$SANLOG"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$SANLOG/asan"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$SANLOG/ubsan"
    unit_tests "$BUILD/obj-san" san
    our_qtests "$BUILD/obj-san" san
    our_iotests "$BUILD/obj-san" san
    if grep -l "ERROR: AddressSanitizer\|runtime error\|ERROR: LeakSanitizer" \
            "$SANLOG"/* 2>/dev/null; then
        grep -h -A30 "ERROR: AddressSanitizer\|runtime error" "$SANLOG"/* | head -n 60
        count sanitizers "errors in $SANLOG" fail
    else
        count sanitizers "no errors reported" pass
    fi
fi

[ -z "$whys" ] || printf 'why:\n%s' "$whys"
echo "QEMU: $(cat "$BUILD/src/VERSION" 2>/dev/null)"
[ -z "$failures" ] || echo "failed:$failures"
echo "$passed passed, $failed failed, $skipped skipped"
if [ "$what" = all ]; then
    # For the cover letter of make series
    {
        echo "make check, $(date -u +%Y-%m-%d), QEMU $(cat "$BUILD/src/VERSION" 2>/dev/null):"
        echo "$passed passed, $failed failed, $skipped skipped${failures:+ (failed:$failures)}"
    } > "$BUILD/check-summary.txt"
fi
[ "$failed" = 0 ]
