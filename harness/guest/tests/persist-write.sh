#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# In the guest, before a power cut: write zones 8 and 9, make it durable.
dd if=/dev/zero bs=64k count=1 2>/dev/null | tr '\0' 'Z' > /tmp/data
for seek in 512 513 576; do
    dd if=/tmp/data of=/dev/vda bs=64k seek=$seek count=1 oflag=direct \
        conv=fsync 2>/dev/null || { echo "write at $seek failed"; exit 1; }
done
# Not synced: may or may not survive, but never past what did
dd if=/tmp/data of=/dev/vda bs=64k seek=514 count=1 oflag=direct 2>/dev/null
echo "=== SYNCED ==="
sleep 600
