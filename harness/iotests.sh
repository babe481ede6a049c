#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Run qemu-iotests from a build and print one line a test:
#   <name> pass|fail|skip [reason]
# usage: iotests.sh OBJDIR FORMAT-ARGS... -- CHECK-ARGS...
# e.g.   iotests.sh build/obj -qcow2 -g quick

. "$(dirname "$0")/common.sh"

OBJ=${1:?usage: iotests.sh OBJDIR CHECK-ARGS...}
shift
dir=$OBJ/tests/qemu-iotests
[ -x "$dir/check" ] || die "no qemu-iotests in $OBJ: build first"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# `check -tap` names each test; a skipped test's reason is in its
# .notrun file, a failed test's diff in its .out.bad file.
(cd "$dir" && ./check -tap -j "${IOTESTS_JOBS:-$(nproc)}" "$@") > "$log" 2>&1 || true
# IOTESTS_LOG=FILE keeps check's own output, for a caller that must say
# what happened to a test that printed no result
[ -z "${IOTESTS_LOG:-}" ] || cp "$log" "$IOTESTS_LOG"
sed -n 's/^ok [a-z0-9]* \([^ ]*\) # SKIP.*/\1 skip/p;
        s/^ok [a-z0-9]* \([^ ]*\)$/\1 pass/p;
        s/^not ok [a-z0-9]* \([^ ]*\).*/\1 fail/p' "$log" |
while read -r t st; do
    reason=""
    if [ "$st" = skip ]; then
        reason=$(cat "$dir"/scratch/*/"$(basename "$t")".notrun 2>/dev/null |
                 head -n1 | tr -s ' \t\n' ' ')
    fi
    echo "$t $st${reason:+ $reason}"
done
if grep -q '^No tests selected' "$log"; then
    msg "qemu-iotests: no test selected by: $*"
elif ! grep -q '^1\.\.[0-9]' "$log"; then
    cat "$log" >&2
    die "qemu-iotests did not run (log above)"
fi
