#!/usr/bin/env bash
# The main job on an embedded default: installs what is needed, builds,
# starts a local NFS server (nfs-ganesha on loopback), and uses it through
# floatmount's NFSv4.1 engine: probe the server, copy a file there and back,
# check it is byte-identical, and print the throughput. Needs root.
#
# Until the FUSE mount lands, this exercises the engine through the
# `floatmount probe` and `floatmount cp` commands.
set -euo pipefail
cd "$(dirname "$0")/.."

bash packaging/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target floatmount ganesha_serve

work=$(mktemp -d /tmp/floatmount-demo.XXXXXX)
server_pid=
cleanup() {
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
url="nfs://127.0.0.1:$port/export"
fm=./build/agent/floatmount

echo "== a local NFS server (nfs-ganesha) answers at 127.0.0.1:$port, export /export"
echo "== floatmount probe $url"
"$fm" probe "$url"
size_mib=${DEMO_SIZE_MIB:-512}
head -c "$((size_mib << 20))" /dev/urandom >"$work/sample.bin"
echo "== floatmount cp: $size_mib MiB to the server"
"$fm" cp "$work/sample.bin" "$url/sample.bin"
echo "== floatmount cp: and back"
"$fm" cp "$url/sample.bin" "$work/back.bin"
cmp "$work/sample.bin" "$work/back.bin"
echo "== the copy came back byte-identical"
