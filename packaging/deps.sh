#!/usr/bin/env bash
# Installs the Debian 12 packages floatmount needs to build and test: the
# one list, used by the README's commands and by CI. Needs root.
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config
  ccache                         # CI's three builds of fresh clones reuse earlier compiles
  libboost-program-options-dev   # command line and config files
  libspdlog-dev                  # logging
  libgtest-dev libgmock-dev      # unit and integration tests
  libfuse3-dev                   # the FUSE low-level API
  libsystemd-dev                 # sd_notify: READY, STATUS, WATCHDOG, STOPPING under systemd
  libc-ares-dev                  # DNS: every A/AAAA record of the server name, with TTLs
  libnfs-dev                     # NFSv3 (vers=3): its raw async RPC API and MOUNT
  nlohmann-json3-dev             # floatmount status --json, and reading it back from the agent
)
runtime_test_packages=(
  fuse3                          # fusermount3 (mounts by non-root users)
  nfs-ganesha nfs-ganesha-vfs    # the loopback NFS server of the tests and the demo
  libnfs-utils                   # nfs-cp: the reference client of the benchmarks
  procps                         # pgrep/pkill in the scripts
  fio                            # verified large I/O in the cache tests, and the benchmarks
  dnsmasq-base                   # the tests' DNS server: round-robin names on a loopback port
  rpcbind                        # NFSv3 tests: ganesha registers MOUNT and NFS with it
  qemu-system-x86                # the knfsd tests: the kernel NFS server in a QEMU guest
  cpio kmod                      # tests/harness/knfsd/build_guest.sh: the guest's initramfs
  busybox-static                 # tests/bench/kernel_reference.sh: the guest's programs on the host too
  debootstrap zstd               # tests/package/debian_root.sh: the clean Debian 12 root, cached
  systemd-container              # systemd-nspawn: tests/package/systemd_boot.sh boots that root
  git sqlite3 tar diffutils      # real tools run on the mount in the integration tests
  gdb                            # the agent's stacks when a test's unmount hangs (mount_fixture.cc)
)

missing=()
for p in "${build_packages[@]}" "${runtime_test_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "packaging/deps.sh: run as root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "installed: ${missing[*]}"
