#!/usr/bin/env bash
# The package under a real systemd as PID 1, as a fleet operator runs it:
#
#   tests/package/systemd_boot.sh DEB GANESHA_SERVE
#
# DEB is the floatmount .deb, GANESHA_SERVE the harness's loopback NFS
# server (build/tests/harness/ganesha_serve). Needs root, /dev/fuse and
# systemd-nspawn (systemd-container, installed if missing).
#
# The system: the minimal Debian 12 root with systemd (debian_root.sh
# --systemd, cached), the .deb installed into it with apt, booted with
# `systemd-nspawn --boot` on this machine's network (the loopback server is
# reachable at 127.0.0.1) with /dev/fuse bound in. Commands run inside
# through nsenter (this machine has no systemd to register the container
# with, so no machinectl). Checked, in order:
#  1. an fstab line with _netdev,nofail becomes a mount unit through
#     systemd-fstab-generator and is mounted at boot;
#  2. `systemctl enable --now floatmount@data` returns with the mount
#     answering (Type=notify: READY=1 only after a stat through the mount);
#  3. `systemctl status` shows the agent's STATUS= line;
#  4. `systemctl restart` with a file held open for writing: the bytes
#     acknowledged by fsync before the restart are on the server;
#  5. `systemctl stop` unmounts within the unit's stop timeout;
#  6. the watchdog: the agent stopped with SIGSTOP is killed and restarted
#     by systemd and the mount answers again. A drop-in shortens the wait
#     (WatchdogSec=10s, RestartSec=1s; the unit has 60 s and 10 s). systemd
#     sends SIGABRT and then SIGCONT, so the stopped agent dies at once and
#     leaves its FUSE mount behind, dead (ENOTCONN); the agent systemd
#     starts next detaches it and mounts again (it used to refuse the mount
#     point, exit 9, until the restart limit). FLOATMOUNT_SYSTEMD_WATCHDOG=0
#     leaves this step out;
#  7. the Databricks init script (packaging/databricks/) takes the systemd
#     path: floatmount@db active and answering; a second run is a no-op;
#  8. the container powers off cleanly.
# FLOATMOUNT_REQUIRE_INTEGRATION=1 (CI): a machine that cannot boot the
# container fails the test; otherwise it skips (exit 77) with the reason.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/package/lib.sh
source "$here/lib.sh"
# (A third argument, the root's tarball, is for the re-run below.)
package_test_args "$@"
skip() {
  [[ ${FLOATMOUNT_REQUIRE_INTEGRATION:-} == 1 ]] && fail "cannot boot the container: $*"
  echo "systemd_boot.sh: SKIP: $*" >&2
  exit 77
}
((EUID == 0)) || fail "run as root: it boots a container and mounts"
[[ -c /dev/fuse ]] || skip "no /dev/fuse"

if [[ -z ${FLOATMOUNT_SYSTEMD_BOOT_NS:-} ]]; then
  if ! command -v systemd-nspawn >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends systemd-container >/dev/null
  fi
  tarball=$(bash "$here/debian_root.sh" --systemd | tail -n 1)
  FLOATMOUNT_SYSTEMD_BOOT_NS=1 exec unshare -m --propagation private bash "$0" "$deb" "$ganesha_serve" "$tarball"
fi
tarball=$3
start=$SECONDS

work=$(mktemp -d /tmp/floatmount-systemd-boot.XXXXXX)
root=$work/root
server_pid=""
nspawn_pid=""
leader=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
    [[ -n $leader ]] && kill -RTMIN+4 "$leader" 2>/dev/null  # systemd: poweroff
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$nspawn_pid" 2>/dev/null
  fi
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/root" 2>/dev/null) == "$root" ]] && kill -9 "${p#/proc/}" 2>/dev/null
  done
  for m in $(awk -v r="$root/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  if ((rc != 0 && rc != 77)); then
    [[ -f $work/boot.log ]] && { echo "--- container console (tail)"; tail -n 40 "$work/boot.log"; } >&2
    [[ -f $work/server.out ]] && tail -n 10 "$work/server.out" >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
in_ct() { nsenter -t "$leader" -m -u -i -p -r -w "$@"; }
step() { echo "== $* ($((SECONDS - start)) s)"; }

mkdir "$root"
tar -C "$root" --zstd -xf "$tarball"

step "apt-get install ./${deb##*/} into the root"
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp "$deb" "$root/tmp/"
apt_install_deb "$root" "$deb" "$work/apt.log"
umount "$root/dev" "$root/proc"

start_loopback_server "$ganesha_serve" "$work"
mkdir -p "$export_dir/fstab" "$root/mnt/data" "$root/mnt/fstab"
printf 'server = 127.0.0.1\nexport = /export\nmountpoint = /mnt/data\nport = %s\n' "$port" \
  >"$root/etc/floatmount/data.conf"
echo "127.0.0.1:/export/fstab /mnt/fstab floatmount _netdev,nofail,x-systemd.mount-timeout=150s,port=$port 0 0" \
  >>"$root/etc/fstab"
mkdir -p "$root/etc/systemd/system/floatmount@data.service.d"
printf '[Service]\nWatchdogSec=10s\nRestartSec=1s\n' >"$root/etc/systemd/system/floatmount@data.service.d/test.conf"
: >"$root/etc/machine-id"  # a fresh machine ID at boot, as on a new node

step "systemd-nspawn --boot"
systemd-nspawn -D "$root" --boot --register=no --keep-unit -M "fmboot$$" --bind=/dev/fuse \
  </dev/null >"$work/boot.log" 2>&1 &
nspawn_pid=$!
for _ in $(seq 150); do
  leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
  [[ -n $leader ]] && break
  kill -0 "$nspawn_pid" 2>/dev/null || skip "systemd-nspawn exited: $(grep -v '^Spawning\|^Press' "$work/boot.log" | head -n 5)"
  sleep 0.2
done
[[ -n $leader ]] || skip "no systemd in the container after 30 s: $(head -n 5 "$work/boot.log")"
# systemctl answers once PID 1 listens on /run/systemd/private.
for _ in $(seq 150); do
  [[ -S $root/run/systemd/private ]] || [[ -S /proc/$leader/root/run/systemd/private ]] && break
  sleep 0.2
done
state=$(timeout 120 nsenter -t "$leader" -m -u -i -p -r -w systemctl is-system-running --wait 2>&1 || true)
echo "system: $state"
[[ $state == running || $state == degraded ]] || fail "the container did not finish booting: $state"
[[ $state == running ]] || in_ct systemctl --failed --no-legend --plain

step "1. the fstab line: a mount unit from systemd-fstab-generator, mounted at boot"
in_ct systemctl is-active mnt-fstab.mount || fail "mnt-fstab.mount is not active"
in_ct grep ' /mnt/fstab ' /proc/mounts || fail "/mnt/fstab is not mounted"
echo boot >"$export_dir/fstab/seen"
[[ $(in_ct cat /mnt/fstab/seen) == boot ]] || fail "/mnt/fstab does not show the server's files"

step "2. systemctl enable --now floatmount@data (Type=notify)"
in_ct systemctl enable --now floatmount@data || fail "enable --now failed"
# No wait: the unit is active only once the mount answered.
in_ct grep ' /mnt/data ' /proc/mounts || fail "active, but /mnt/data is not mounted"
echo hello >"$export_dir/hello"
[[ $(in_ct cat /mnt/data/hello) == hello ]] || fail "/mnt/data does not answer"

step "3. systemctl status shows the STATUS line"
status=$(in_ct systemctl status --no-pager floatmount@data || true)
echo "$status" | head -n 6
status_line=$(sed -n 's/^ *Status: //p' <<<"$status")
[[ -n $status_line ]] || fail "systemctl status shows no Status: line"
echo "Status: $status_line"

step "4. systemctl restart with a file open for writing: fsync'd bytes survive"
head -c 3M /dev/urandom >"$root/var/tmp/acked.bin"
# fd 3 stays open across the restart; dd writes through /dev/fd/3 and
# fsyncs before it exits: what it wrote is acknowledged.
in_ct sh -c 'exec 3>/mnt/data/held.bin; dd if=/var/tmp/acked.bin of=/dev/fd/3 bs=1M conv=fsync status=none &&
  echo $$ >/var/tmp/acked && exec sleep 600' &
holder=$!
for _ in $(seq 100); do [[ -s $root/var/tmp/acked ]] && break; sleep 0.2; done
[[ -s $root/var/tmp/acked ]] || fail "the write through /mnt/data did not finish"
t0=$SECONDS
in_ct systemctl restart floatmount@data || fail "restart failed"
echo "restarted in $((SECONDS - t0)) s with held.bin open for writing"
in_ct sh -c "kill $(cat "$root/var/tmp/acked")" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
cmp "$root/var/tmp/acked.bin" "$export_dir/held.bin" || fail "the server lacks bytes acknowledged before the restart"
in_ct cmp /var/tmp/acked.bin /mnt/data/held.bin || fail "the remounted /mnt/data reads other bytes"
echo "3 MiB acknowledged before the restart: on the server and through the new mount"

step "5. systemctl stop unmounts within the stop timeout"
t0=$SECONDS
in_ct systemctl stop floatmount@data || fail "stop failed"
echo "stopped in $((SECONDS - t0)) s (TimeoutStopSec=$(in_ct systemctl show -P TimeoutStopUSec floatmount@data))"
! in_ct grep -q ' /mnt/data ' /proc/mounts || fail "/mnt/data is still mounted after stop"
in_ct journalctl -b -u floatmount@data --no-pager -n 3 -o cat

if [[ ${FLOATMOUNT_SYSTEMD_WATCHDOG:-1} == 0 ]]; then
  echo "== 6. the watchdog: not run (FLOATMOUNT_SYSTEMD_WATCHDOG=0)"
else
  step "6. the watchdog restarts a hung agent (SIGSTOP)"
  in_ct systemctl start floatmount@data || fail "start failed"
  old=$(in_ct systemctl show -P MainPID floatmount@data)
  ((old > 0)) || fail "no main PID"
  in_ct sh -c "kill -STOP $old"
  restarted=0
  for _ in $(seq 120); do
    new=$(in_ct systemctl show -P MainPID floatmount@data)
    if [[ $new != "$old" && $new != 0 && $(in_ct systemctl is-active floatmount@data) == active ]]; then
      restarted=1
      break
    fi
    sleep 0.5
  done
  if ((restarted == 0)); then
    in_ct journalctl -b -u floatmount@data --no-pager -o short-monotonic |
      grep -i -m 5 -e watchdog -e 'not a directory' -e 'too quickly' >&2
    fail "systemd did not restart the stopped agent (PID $old) into an active unit"
  fi
  in_ct journalctl -b -u floatmount@data --no-pager | grep -i watchdog | head -n 3
  echo again >"$export_dir/again"
  [[ $(in_ct cat /mnt/data/again) == again ]] || fail "the mount did not come back after the watchdog restart"
  echo "agent $old stopped; systemd restarted it as $new; the mount answers"
fi

step "7. the Databricks init script, with systemd as PID 1"
# The .deb is installed already (same version: the script skips apt); the
# script must take the systemd path and leave a second run a no-op.
cp "$deb" "$here/../../packaging/databricks/floatmount-init.sh" "$root/var/tmp/"
mkdir -p "$export_dir/db"
init_env=(env FLOATMOUNT_SERVER=127.0.0.1 FLOATMOUNT_EXPORT=/export/db FLOATMOUNT_MOUNT_POINT=/mnt/db
  "FLOATMOUNT_OPTIONS=port=$port" "FLOATMOUNT_DEB=/var/tmp/${deb##*/}" FLOATMOUNT_NAME=db)
in_ct "${init_env[@]}" bash /var/tmp/floatmount-init.sh || fail "the init script failed (exit $?)"
[[ $(in_ct systemctl is-active floatmount@db) == active ]] || fail "the init script did not start floatmount@db"
echo databricks >"$export_dir/db/seen"
[[ $(in_ct cat /mnt/db/seen) == databricks ]] || fail "/mnt/db does not show the server's files"
pid=$(in_ct systemctl show -P MainPID floatmount@db)
in_ct "${init_env[@]}" bash /var/tmp/floatmount-init.sh || fail "the second run of the init script failed"
[[ $(in_ct systemctl show -P MainPID floatmount@db) == "$pid" ]] || fail "the second run restarted the agent"
echo "floatmount@db active (agent $pid), /mnt/db answers; a second run left it alone"
in_ct systemctl stop floatmount@db || fail "stop floatmount@db failed"

step "8. poweroff"
in_ct systemctl poweroff || true
for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
kill -0 "$nspawn_pid" 2>/dev/null && fail "the container did not power off within 60 s"
wait "$nspawn_pid" || fail "systemd-nspawn exited with $?"
nspawn_pid=""
echo "systemd_boot.sh: OK in $((SECONDS - start)) s"
