#!/usr/bin/env bash
# The main job on an embedded default: installs what is needed, builds,
# starts a local NFS server (nfs-ganesha on loopback), mounts it with
# floatmount, and shows it working: writes and reads back a file through
# the mount, lists it, and unmounts (which commits everything). Then the
# engine alone: `floatmount probe` and `floatmount cp`. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

bash packaging/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target floatmount ganesha_serve

work=$(mktemp -d /tmp/floatmount-demo.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
server_pid=
fm=./build/agent/floatmount
cleanup() {
  if grep -qs " $mnt " /proc/mounts; then "$fm" unmount "$mnt" || umount -l "$mnt"; fi
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

./build/tests/harness/ganesha_serve >"$work/server.out" &
server_pid=$!
for _ in $(seq 100); do
  grep -q '^pseudo=' "$work/server.out" 2>/dev/null && break
  kill -0 "$server_pid" 2>/dev/null || { echo "the loopback NFS server did not start" >&2; exit 1; }
  sleep 0.2
done
port=$(sed -n 's/^port=//p' "$work/server.out")
export_dir=$(sed -n 's/^export_dir=//p' "$work/server.out")
size_mib=${DEMO_SIZE_MIB:-512}

echo "== a local NFS server (nfs-ganesha) answers at 127.0.0.1:$port, export /export"
echo "== floatmount -o port=$port,nconnect=8 127.0.0.1:/export $mnt"
"$fm" -o "port=$port,nconnect=8,state_dir=$work/state" 127.0.0.1:/export "$mnt"
grep " $mnt " /proc/mounts
head -c "$((size_mib << 20))" /dev/urandom >"$work/sample.bin"
echo "== write $size_mib MiB through the mount (with fsync)"
dd if="$work/sample.bin" of="$mnt/sample.bin" bs=1M conv=fsync status=none
mkdir "$mnt/results" && echo "checkpoint ok" >"$mnt/results/status.txt"
ls -l "$mnt" "$mnt/results"
echo "== read it back through the mount and compare"
cmp "$work/sample.bin" "$mnt/sample.bin"
cmp "$work/sample.bin" "$export_dir/sample.bin"
echo "   identical, on the mount and on the server"
df -h "$mnt"
echo "== floatmount unmount $mnt"
"$fm" unmount "$mnt"

echo "== the engine alone: floatmount probe nfs://127.0.0.1:$port/export"
"$fm" probe "nfs://127.0.0.1:$port/export"
echo "== floatmount cp: $size_mib MiB from the server"
"$fm" cp "nfs://127.0.0.1:$port/export/sample.bin" "$work/back.bin"
cmp "$work/sample.bin" "$work/back.bin"
echo "== done: the copy came back byte-identical"
