#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# The floor of a durable write pointer on this disk, without QEMU: the
# cost of one more sector written per flush.  A file opened O_DIRECT
# gets N times "write 4 KiB at the end; fdatasync" (what a plain image
# does for a guest write and flush), and N times "write 4 KiB at the end;
# write 512 bytes at a fixed offset; fdatasync" (the same plus one table
# sector).  Runs alternate; the medians and their ratio are printed.
#
# usage: bench-floor.py DIR N RUNS
import mmap
import os
import statistics
import sys
import time

d, n, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = mmap.mmap(-1, 4096)
buf.write(b'\x5a' * 4096)
sector = memoryview(buf)[:512]


def run(extra):
    path = os.path.join(d, 'floor.raw')
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_DIRECT)
    try:
        os.pwrite(fd, buf, 0)
        os.fdatasync(fd)
        t = time.monotonic()
        for i in range(1, n + 1):
            os.pwrite(fd, buf, i * 4096)
            if extra:
                os.pwrite(fd, sector, 0)
            os.fdatasync(fd)
        return n * 4096 / (time.monotonic() - t) / 2**20
    finally:
        os.close(fd)
        os.unlink(path)


plain, more = [], []
for r in range(runs):
    if r % 2:
        more.append(run(True))
        plain.append(run(False))
    else:
        plain.append(run(False))
        more.append(run(True))
p, m = statistics.median(plain), statistics.median(more)
print('%-34s %8.1f MB/s' % ('4 KiB write + fdatasync', p))
print('%-34s %8.1f MB/s' % ('4 KiB + 512 B writes + fdatasync', m))
print('%-34s %8.3f' % ('ratio', m / p))
