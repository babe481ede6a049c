#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Boot the test guest under build/qemu-system-x86_64 (TCG) with a test
# script, print what the script prints, and exit with its exit code.
#
# usage: run.sh SCRIPT [QEMU ARGS...]   (e.g. -blockdev/-device for the disk)
# GUEST_TIMEOUT (seconds, default 300) bounds the whole run.
# GUEST_KILL_AT=TEXT: when the guest prints TEXT, QEMU is killed with
# SIGKILL (a power cut); the run then passes if TEXT was seen.
# GUEST_MEM: the guest's memory (default 1G).
# GUEST_QMP=1: QEMU listens to QMP, and each line "QMP: JSON :QMP" that
# the guest prints is sent to it as a command (qmp.py); the answers go to
# stderr.  The guest sees the effect, not the answer: it waits for it.
# GUEST=new boots the newest guest (Debian sid's kernel and tools; see
# build.sh) instead of the long-term one.

. "$(dirname "$0")/../common.sh"

script=${1:?usage: run.sh SCRIPT [QEMU ARGS...]}
shift
case ${GUEST:=lts} in
new) G=$BUILD/guest-new ;;
*) G=$BUILD/guest ;;
esac
export GUEST
"$TOP/harness/guest/build.sh"

w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/root"
cp "$script" "$w/root/test.sh"
chmod +x "$w/root/test.sh"
cp "$G/initrd.cpio" "$w/initrd"
# A second archive with the script, at a 4-byte boundary of the first
truncate -s %4 "$w/initrd"
(cd "$w/root" && echo test.sh | cpio -o -H newc --quiet) >> "$w/initrd"

qmp=()
if [ -n "${GUEST_QMP:-}" ]; then
    qmp=(-qmp "unix:$w/qmp.sock,server=on,wait=off")
fi

# (the watcher below reads the console before QEMU writes to it)
: > "$w/console"
accel=tcg
if [ -w /dev/kvm ] && grep -qw vmx /proc/cpuinfo; then
    accel=kvm:tcg
fi
set +e
timeout --foreground -k 10 "${GUEST_TIMEOUT:-300}" \
    "$BUILD/qemu-system-x86_64" -M q35,accel=$accel -smp 2 -m "${GUEST_MEM:-1G}" \
    -nodefaults -display none -no-reboot -serial stdio \
    -kernel "$G/vmlinuz" -initrd "$w/initrd" \
    -append "console=ttyS0 quiet loglevel=1 panic=-1" "${qmp[@]}" "$@" \
    > "$w/console" 2>&1 &
qpid=$!
if [ -n "${GUEST_KILL_AT:-}" ] || [ -n "${GUEST_QMP:-}" ]; then
    sent=0
    while kill -0 "$qpid" 2>/dev/null; do
        if [ -n "${GUEST_QMP:-}" ]; then
            # Each new "QMP: " line, once
            tr -d '\r' < "$w/console" | sed -n 's/^QMP: \(.*\) :QMP$/\1/p' |
                tail -n +$((sent + 1)) > "$w/qmp.new"
            while IFS= read -r cmd; do
                sent=$((sent + 1))
                python3 "$TOP/harness/guest/qmp.py" "$w/qmp.sock" "$cmd" >&2 ||
                    warn "QMP command failed: $cmd"
            done < "$w/qmp.new"
        fi
        if [ -n "${GUEST_KILL_AT:-}" ] &&
           grep -qF -- "$GUEST_KILL_AT" "$w/console"; then
            # timeout's child is QEMU
            pkill -KILL -P "$qpid" -f qemu-system-x86_64
            { wait "$qpid"; } 2>/dev/null
            tr -d '\r' < "$w/console" | sed -n '/^=== GUEST TEST START ===$/,$p'
            exit 0
        fi
        sleep 0.2
    done
fi
wait "$qpid"
qrc=$?
set -e
tr -d '\r' < "$w/console" |
    sed -n '/^=== GUEST TEST START ===$/,/^=== GUEST TEST END rc=[0-9]* ===$/p'
rc=$(tr -d '\r' < "$w/console" | sed -n 's/^=== GUEST TEST END rc=\([0-9]*\) ===$/\1/p')
if [ -z "$rc" ]; then
    tail -n 30 "$w/console" >&2
    die "the guest did not finish its test (QEMU exit code $qrc)"
fi
exit "$rc"
