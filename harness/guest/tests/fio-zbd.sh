#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest: fio's zoned block device suite (t/zbd/test-zbd-support from
# Debian's fio 3.33 source) against a zoned disk.  The host prepends
#   ZBD_DEV   the disk (/dev/vda, /dev/nvme0n1, /dev/zbd0)
#   ZBD_OPTS  options of the suite (-o N for open limits, -t N for a subset)
# and what makes the disk appear (loading a module, making a null_blk).
# Prints the suite's lines, then the log of every failed test.
for i in $(seq 50); do
    [ -b "$ZBD_DEV" ] && break
    sleep 0.1
done
cd /fio/t/zbd
# shellcheck disable=SC2086
PATH=/gnu/bin:$PATH ./test-zbd-support $ZBD_OPTS "$ZBD_DEV"
rc=$?
for f in test-zbd-support.log.*; do
    [ -e "$f" ] || continue
    if [ "$(tail -n 1 "$f")" = FAIL ]; then
        echo "--- log of failed test ${f##*.} (last 40 lines)"
        tail -n 40 "$f"
    fi
done
exit $rc
