#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""qmp.py SOCKET JSON: send one QMP command to the QEMU listening on the
unix socket SOCKET; print its answer (one line of JSON), exit 1 if it is
an error.  run.sh uses it for the lines "QMP: JSON" that a guest prints."""

import json
import socket
import sys


def answer(f):
    """The next line from QEMU that is not an event"""
    while True:
        line = f.readline()
        if not line:
            raise SystemExit('qmp.py: QEMU closed the connection')
        msg = json.loads(line)
        if 'event' not in msg:
            return msg


def main():
    path, cmd = sys.argv[1], json.loads(sys.argv[2])
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        f = s.makefile('rw')
        answer(f)                       # the greeting
        f.write(json.dumps({'execute': 'qmp_capabilities'}) + '\n')
        f.flush()
        answer(f)
        f.write(json.dumps(cmd) + '\n')
        f.flush()
        res = answer(f)
    print(json.dumps(res))
    return 1 if 'error' in res else 0


if __name__ == '__main__':
    sys.exit(main())
