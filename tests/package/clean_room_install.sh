#!/usr/bin/env bash
# Installs the .deb on a clean Debian 12 and uses it there:
#
#   tests/package/clean_room_install.sh DEB GANESHA_SERVE
#
# DEB is the floatmount .deb (packaging/build_deb.sh), GANESHA_SERVE the
# harness's loopback NFS server (build/tests/harness/ganesha_serve). Needs
# root and /dev/fuse.
#
# The system: a fresh copy of the minimal root that debian_root.sh makes
# (debootstrap --variant=minbase, nothing else installed), entered with
# chroot, with /proc and /dev (for /dev/fuse) mounted inside and this
# machine's network. In it: `apt-get install ./floatmount_*.deb` must fetch
# what the package depends on from the mirror and install it;
# `floatmount --version` and `floatmount client-id` must run;
# `mount -t floatmount` must find /sbin/mount.floatmount and mount the
# loopback nfs-ganesha (started on this machine, outside the root); a file
# written through the mount must reach the server's export intact; and
# `floatmount unmount` must end the agent. Everything runs in a private
# mount namespace; processes left in the root are killed and the copy is
# deleted, whatever the outcome.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/package/lib.sh
source "$here/lib.sh"
# (A third argument, the root's tarball, is for the re-run below.)
package_test_args "$@"
((EUID == 0)) || fail "run as root: it uses chroot, mounts and FUSE"
[[ -c /dev/fuse ]] || fail "no /dev/fuse"

# Into a private mount namespace: the root's mounts vanish with it.
if [[ -z ${FLOATMOUNT_CLEAN_ROOM_NS:-} ]]; then
  tarball=$(bash "$here/debian_root.sh" | tail -n 1)
  FLOATMOUNT_CLEAN_ROOM_NS=1 exec unshare -m --propagation private bash "$0" "$deb" "$ganesha_serve" "$tarball"
fi
tarball=$3
start=$SECONDS

work=$(mktemp -d /tmp/floatmount-clean-room.XXXXXX)
root=$work/root
server_pid=""
cleanup() {
  local rc=$?
  set +e
  # Whatever runs inside the root (an agent left by a failed step).
  for p in $(pids_in_root); do kill -9 "$p"; done
  grep -qs " $root/mnt " /proc/mounts && umount -l "$root/mnt"
  for m in "$root/dev" "$root/proc"; do mountpoint -q "$m" && umount -l "$m"; done
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  ((rc != 0)) && [[ -f $work/server.out ]] && tail -n 20 "$work/server.out" >&2
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
in_root() { chroot "$root" "$@"; }
# The PIDs of the processes whose root is the copy.
pids_in_root() {
  local p
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && echo "${p#/proc/}"
  done
  return 0
}

mkdir "$root"
tar -C "$root" --zstd -xf "$tarball"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
before=$(in_root dpkg-query -W -f='${Package}\n' | sort)

echo "== apt-get install ./${deb##*/} on a minimal Debian 12"
apt_install_deb "$root" "$deb" "$work/apt.log"
added=$(comm -13 <(echo "$before") <(in_root dpkg-query -W -f='${Package}\n' | sort) | paste -sd' ')
echo "installed: $added"
[[ " $added " == *" floatmount "* ]] || fail "floatmount is not installed"

echo "== floatmount --version, floatmount client-id"
version=$(dpkg-deb -f "$deb" Version)
got=$(in_root floatmount --version) || fail "floatmount --version failed"
echo "$got"
[[ $got == "floatmount ${version%%-*}" ]] || fail "--version says '$got', the package is $version"
in_root floatmount client-id || fail "floatmount client-id failed"

echo "== mount -t floatmount (mount(8) runs /sbin/mount.floatmount) from the loopback nfs-ganesha"
start_loopback_server "$ganesha_serve" "$work"
mkdir -p "$root/mnt"
in_root mount -t floatmount -o "port=$port" 127.0.0.1:/export /mnt || fail "mount -t floatmount failed"
in_root grep ' /mnt ' /proc/mounts || fail "/mnt is not mounted"
head -c 4M /dev/urandom >"$work/sample.bin"
cp "$work/sample.bin" "$root/tmp/sample.bin"
in_root dd if=/tmp/sample.bin of=/mnt/sample.bin bs=1M conv=fsync status=none || fail "writing through the mount failed"
in_root cmp /tmp/sample.bin /mnt/sample.bin || fail "the mount reads back other bytes"
cmp "$work/sample.bin" "$export_dir/sample.bin" || fail "the server holds other bytes"
echo "a 4 MiB file went through the mount to the server intact"
in_root floatmount unmount /mnt || fail "floatmount unmount failed"
for _ in $(seq 50); do
  agents=$(pids_in_root | paste -sd' ')
  [[ -z $agents ]] && break
  sleep 0.2
done
[[ -z $agents ]] || fail "processes left in the root after the unmount: $agents"
! grep -qs " $root/mnt " /proc/mounts || fail "/mnt is still mounted"
echo "clean_room_install.sh: OK in $((SECONDS - start)) s (root: ${tarball##*/})"
