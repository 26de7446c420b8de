#!/bin/sh
# /init of the knfsd test guest (built by build_guest.sh, booted by
# tests/harness/knfsd_server.cc). Sets up QEMU user networking's fixed
# guest address, exports a tmpfs at /export as the NFSv4 pseudo-root and
# starts the kernel NFS server with NFSv4.1 (and 4.0/4.2) only. Prints
# "KNFSD-READY" on the console (ttyS0) when nfsd runs and grace has ended;
# any failure prints "KNFSD-FAILED: ..." and powers off.
#
# ttyS1 is the control port: a shell reads commands there, one per line
# (the harness's RunInGuest adds its own end marker).
#
# Kernel command line knobs: knfsd.lease=S (nfsv4leasetime, default 10),
# knfsd.grace=S (nfsv4gracetime, default 10), knfsd.threads=N (default 8).
export PATH=/bin:/sbin
/bin/busybox --install -s /bin
fail() { echo "KNFSD-FAILED: $*"; poweroff -f 2>/dev/null; echo o >/proc/sysrq-trigger; sleep 1000; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t tmpfs -o mode=0777 tmpfs /export || fail "tmpfs /export"
chmod 0777 /export
mount -t tmpfs tmpfs /var/lib/nfs
mkdir -p /var/lib/nfs/v4recovery /var/lib/nfs/rpc_pipefs
: >/var/lib/nfs/etab
: >/var/lib/nfs/rmtab

lease=10 grace=10 threads=8
for arg in $(cat /proc/cmdline); do
  case $arg in
    knfsd.lease=*) lease=${arg#*=} ;;
    knfsd.grace=*) grace=${arg#*=} ;;
    knfsd.threads=*) threads=${arg#*=} ;;
  esac
done

while read -r ko; do
  insmod "$ko" || fail "insmod $ko"
done </lib/modules/load-order

hostname knfsd-guest
ip link set lo up
ip link set eth0 up || fail "no eth0"
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2

echo '/export *(rw,no_root_squash,insecure,no_subtree_check,fsid=0,sync)' >/etc/exports
mount -t nfsd nfsd /proc/fs/nfsd || fail "mount nfsd"
echo "$lease" >/proc/fs/nfsd/nfsv4leasetime || fail "nfsv4leasetime"
echo "$grace" >/proc/fs/nfsd/nfsv4gracetime || fail "nfsv4gracetime"
exportfs -ra || fail "exportfs"
rpc.mountd -N 2 -N 3 --no-udp || fail "rpc.mountd"
# nfsd-start: starts nfsd's threads; also what the harness runs to restart
# the server (`rpc.nfsd 0; nfsd-start`: all NFSv4 state is lost and a grace
# period begins, as after a reboot, while the export's files stay).
cat >/sbin/nfsd-start <<SCRIPT
#!/bin/sh
exec rpc.nfsd -N 3 -V 4 -V 4.1 -V 4.2 --no-udp -p 2049 $threads
SCRIPT
chmod 0755 /sbin/nfsd-start
nfsd-start || fail "rpc.nfsd"
# A fresh server has no clients to wait for.
echo Y >/proc/fs/nfsd/v4_end_grace
echo "KNFSD-READY versions=$(cat /proc/fs/nfsd/versions) lease=$lease"

# The control port: raw, no echo, so the harness reads only the output.
stty -F /dev/ttyS1 raw -echo
while true; do
  sh </dev/ttyS1 >/dev/ttyS1 2>&1
done
