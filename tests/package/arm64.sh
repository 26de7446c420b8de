#!/usr/bin/env bash
# The arm64 (Graviton) build, made and checked on this amd64 machine:
#   tests/package/arm64.sh [--unit-tests] [OUTDIR]
#  1. packaging/build_deb.sh --arch arm64: the .deb, cross-built with
#     Debian's cross toolchain and the arm64 -dev packages (multiarch).
#  2. packaging/check_deb.sh on it: lintian, Depends, the libraries and
#     symbol versions it needs (Ubuntu 22.04's at most), the binary's
#     --version and example config run under qemu-user.
#  3. The packaged binary's `client-id` under qemu-user.
#  4. With --unit-tests (CI): the unit tests, cross-built (Release, not
#     the .deb's portable link) and run under qemu-user: the code's arm64
#     behaviour (weaker memory ordering, other type sizes and alignment in
#     the XDR and cache code). Cold, the cross build took 4-6 min on two
#     cores; through ccache a run whose sources were compiled before pays
#     the link and the ~20 s the tests take under qemu-user.
#     The integration tests are not run: qemu-user emulates neither
#     /dev/fuse's protocol nor the servers, and they add no arm64-specific
#     path beyond what the unit tests cover.
# Needs root (build dependencies, dpkg --add-architecture). Compiles go
# through ccache when installed (CMakeLists.txt): CI pays the cross build
# once per change. OUTDIR (default build-arm64/ in the checkout) keeps the
# .deb and the unit-test build.
set -euo pipefail
cd "$(dirname "$0")/../.."
unit_tests=false
if [[ ${1:-} == --unit-tests ]]; then
  unit_tests=true
  shift
fi
out=$(realpath -m "${1:-build-arm64}")
mkdir -p "$out"
fail() { echo "arm64.sh: FAIL: $*" >&2; exit 1; }
qemu=qemu-aarch64-static
if ! command -v "$qemu" >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null
fi

echo "== arm64 .deb (cross-built)"
deb=$(bash packaging/build_deb.sh --arch arm64 "$out/deb" | tail -n 1)
[[ $(dpkg-deb -f "$deb" Architecture) == arm64 ]] || fail "$deb is not an arm64 package"
root=$(mktemp -d "${TMPDIR:-/tmp}/floatmount-arm64.XXXXXX")
trap 'rm -rf "$root"' EXIT
dpkg -x "$deb" "$root"
# ELF header: e_machine (bytes 18-19, little-endian) 0x00b7 = EM_AARCH64.
machine=$(od -An -tx1 -j18 -N2 "$root/usr/sbin/floatmount" | tr -d ' \n')
[[ $machine == b700 ]] || fail "the packaged binary is not an AArch64 ELF (e_machine $machine)"

echo "== check_deb.sh on the arm64 package (the binary under $qemu)"
FLOATMOUNT_RUN_FOREIGN=$qemu bash packaging/check_deb.sh "$deb"

echo "== client-id under $qemu"
out_first=$("$qemu" "$root/usr/sbin/floatmount" client-id --state-dir "$root/state")
out_again=$("$qemu" "$root/usr/sbin/floatmount" client-id --state-dir "$root/state")
echo "$out_again"
# The first line is the node ID: made by the first run, loaded by the second.
id=$(head -n 1 <<<"$out_first")
[[ -n $id && $(head -n 1 <<<"$out_again") == "$id" ]] ||
  fail "client-id printed another node ID the second time on the same state directory"
[[ $out_again == *"loaded from $root/state/node-id"* ]] || fail "the second client-id did not load the stored ID"

$unit_tests || { echo "arm64.sh: OK (unit tests under $qemu: --unit-tests)"; exit 0; }

echo "== unit tests, cross-built, under $qemu"
cmake -S . -B "$out/unit" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
  -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++ \
  -DPKG_CONFIG_EXECUTABLE=/usr/bin/aarch64-linux-gnu-pkg-config \
  "-DCMAKE_CROSSCOMPILING_EMULATOR=$qemu;-L;/" >/dev/null
cmake --build "$out/unit" -j"$(nproc)" --target unit_tests
"$qemu" -L / "$out/unit/tests/unit_tests" --gtest_brief=1
