# SPDX-License-Identifier: GPL-2.0-or-later
# Sourced in the guest by the tests of zones that fail (faults.sh,
# zonefs-faults.sh), run.sh with GUEST_QMP.
#   vc ZONE: the condition of zone ZONE of /dev/vda (blkzone's zcond)
#   waitfor CMD VALUE: until CMD prints VALUE, 20 s at most
#   qmp_fault NODE OFFSET FAULT: x-blockdev-zone-fault on the 4 MiB zone
#          at byte OFFSET of node NODE, sent by run.sh
Z=8192
MiB=1048576
vc() { blkzone report -o $(($1 * Z)) -c 1 /dev/vda | sed -n 's/.*zcond: *\([0-9]*\).*/\1/p'; }
waitfor() {
    i=0
    while [ "$(eval "$1")" != "$2" ] && [ $i -lt 100 ]; do
        sleep 0.2
        i=$((i + 1))
    done
}
qmp_fault() {
    echo "QMP: {\"execute\": \"x-blockdev-zone-fault\", \"arguments\": {\"node-name\": \"$1\", \"offset\": $2, \"length\": $((4 * MiB)), \"fault\": \"$3\"}} :QMP"
}
