#!/usr/bin/env bash
# The POSIX suite (tests/integration/posix_*_test.cc) against the Linux
# kernel's NFSv4.1 client instead of floatmount, on the server floatmount
# is tested on (knfsd in the QEMU test guest): the kernel client as the
# reference (issue 16). Put its results next to floatmount's
# (FLOATMOUNT_TEST_SERVER=knfsd build/tests/integration_tests
# --gtest_filter='Posix*').
#
# This host has no NFS client module, the guest has: so the test binary
# runs inside the guest, in MountTest's kernel-client mode
# (tests/integration/kernel_client_mode.h), where each test mounts a fresh
# directory of the guest's own export over loopback and checks the server's
# side on the guest's /export. The script boots the guest
# (build/tests/harness/knfsd_serve), copies the test binary (without debug
# info) and the libraries it loads into the export through a floatmount
# mount on the host, checks that the guest's kernel client mounts the
# export, runs the suite there in the background (the guest's CPU is
# emulated, so everything is several times slower: FLOATMOUNT_TEST_TIME_SCALE
# stretches the tests' bounds), polls it, and prints the summary: passed,
# failed with the first line of each failure, skipped with the reason.
#
# Usage (root: QEMU, FUSE mount): tests/harness/knfsd/kernel_client_posix.sh [FILTER]
#   FILTER: gtest filter, default 'Posix*'
# Knobs: KPOSIX_TIME_SCALE=4 (FLOATMOUNT_TEST_TIME_SCALE in the guest)
#   KPOSIX_TIMEOUT=3600 (seconds the suite may run before it is killed)
#   KPOSIX_RESULTS=/tmp/kernel-posix-results (kept: gtest.log, report.xml)
#   KPOSIX_GTEST_ARGS (more arguments for the test binary, e.g. --gtest_repeat=2)
#   FLOATMOUNT, KNFSD_SERVE, INTEGRATION_TESTS (binaries; default build/)
#   FLOATMOUNT_KNFSD_IMAGE (the guest image; built if missing, ~1 min)
#   KPOSIX_STRICT=1 (CI): exit 3 if a test failed
# Exit status: 0 the suite ran (whatever its results, unless KPOSIX_STRICT),
# 1 it could not be set up or did not finish, 3 a test failed under
# KPOSIX_STRICT=1. Takes about a minute (here: a 10 s boot, the
# suite 30-45 s; with KVM less).
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../../.." && pwd)

FILTER=${1:-Posix*}
TIME_SCALE=${KPOSIX_TIME_SCALE:-4}
SUITE_TIMEOUT=${KPOSIX_TIMEOUT:-3600}
RESULTS=${KPOSIX_RESULTS:-/tmp/kernel-posix-results}
GTEST_ARGS=${KPOSIX_GTEST_ARGS:-}
STRICT=${KPOSIX_STRICT:-0}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
KNFSD_SERVE=${KNFSD_SERVE:-$REPO/build/tests/harness/knfsd_serve}
INTEGRATION_TESTS=${INTEGRATION_TESTS:-$REPO/build/tests/integration_tests}
# The suite's directory in the export (the tests' own are kposix-<pid>-*).
SUITE=kernel-posix-suite

die() { echo "kernel_client_posix: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root"
for b in "$FLOATMOUNT" "$KNFSD_SERVE" "$INTEGRATION_TESTS"; do [[ -x $b ]] || die "$b missing"; done
for t in objcopy ldd python3 md5sum; do command -v "$t" >/dev/null || die "$t missing"; done

TMP=$(mktemp -d /tmp/kposix.XXXXXX)
MNT=$TMP/mnt
mkdir -p "$MNT" "$TMP/state"
SERVE_CHILD=""

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  if grep -q " $MNT " /proc/mounts; then
    timeout 90 "$FLOATMOUNT" unmount "$MNT" >/dev/null 2>&1 || umount -l "$MNT"
  fi
  if [[ -n $SERVE_CHILD ]]; then
    # knfsd_serve stops the guest on SIGTERM.
    kill -TERM "$SERVE_CHILD" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$SERVE_CHILD" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVE_CHILD" 2>/dev/null
    wait "$SERVE_CHILD" 2>/dev/null
  fi
  rmdir "$MNT" 2>/dev/null
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# ---- the guest -------------------------------------------------------------

echo "booting the knfsd guest..."
coproc SERVE { exec "$KNFSD_SERVE" 2>"$TMP/serve.err"; }
# Plain descriptors and pid: bash drops the coprocess's when it exits, and
# does not pass them to subshells ($(guest ...)).
SERVE_CHILD=$SERVE_PID
exec 3<&"${SERVE[0]}" 4>&"${SERVE[1]}"
PORT=""
while IFS= read -r -t 600 line <&3; do
  case $line in
    port=*) PORT=${line#port=} ;;
    dir=*) break ;;
  esac
done
[[ -n $PORT ]] || die "knfsd_serve did not start the guest: $(tail -n 20 "$TMP/serve.err")"

# Runs one shell line in the guest (knfsd_serve's stdin; bound 30 s times
# its FLOATMOUNT_TEST_TIME_SCALE), prints its output, returns its status.
guest() {
  local line rc=""
  echo "$1" >&4
  while IFS= read -r -t 300 line <&3; do
    if [[ $line =~ ^(.*)\[exit\ (-?[0-9]+)\]$ ]]; then
      [[ -n ${BASH_REMATCH[1]} ]] && echo "${BASH_REMATCH[1]}"
      rc=${BASH_REMATCH[2]}
      break
    fi
    echo "$line"
  done
  [[ -n $rc ]] || die "no answer from the guest to: $1"
  return $((rc == 0 ? 0 : 1))
}

# ---- the test binary, into the export --------------------------------------

"$FLOATMOUNT" -o "port=$PORT,state_dir=$TMP/state" 127.0.0.1:/ "$MNT" ||
  die "floatmount could not mount the guest's export"
mkdir "$MNT/$SUITE"
objcopy --strip-debug "$INTEGRATION_TESTS" "$MNT/$SUITE/integration_tests"
# All the libraries it loads, the loader too: the guest's /lib has the
# host's libc but not, e.g., libstdc++ or libspdlog.
ldd "$INTEGRATION_TESTS" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' |
  while read -r lib; do cp -L "$lib" "$MNT/$SUITE/"; done
LOADER=$(ldd "$INTEGRATION_TESTS" | awk '/^\t\/lib/ { n = split($1, p, "/"); print p[n] }')
[[ -n $LOADER && -f $MNT/$SUITE/$LOADER ]] || die "no dynamic loader in ldd's list"
(cd "$MNT/$SUITE" && md5sum ./*) >"$TMP/host.md5"
sync
guest "cd /export/$SUITE && md5sum ./*" >"$TMP/guest.md5" || die "md5sum in the guest failed"
diff -q "$TMP/host.md5" "$TMP/guest.md5" >/dev/null ||
  die "the guest sees other bytes than were copied: $(diff "$TMP/host.md5" "$TMP/guest.md5")"
echo "copied $(wc -l <"$TMP/host.md5") files ($(du -sh "$MNT/$SUITE" | cut -f1)) into the export"

# The kernel client must mount the export at all before the suite relies on it.
guest "mkdir -p /mnt/k && mount -t nfs4 -o vers=4.1,addr=127.0.0.1,clientaddr=127.0.0.1 \
127.0.0.1:/ /mnt/k && ls /mnt/k/$SUITE/integration_tests && umount /mnt/k" >/dev/null ||
  die "the guest's kernel client cannot mount its export"

# ---- the suite, in the background in the guest ------------------------------

# No delegations in this run. The suite's two mounts of a test are one
# kernel, so one NFSv4 client ID (kernel_client_mode.h), and knfsd does not
# recall a read delegation when the same client opens the file to write:
# the second mount then kept serving its delegation's cached bytes after the
# first mount had written and closed (CloseToOpenAcrossMounts failed in 2
# of 190 runs, in 7 of 450 with 20 ms between its writes, so not because
# of knfsd's one-change-per-clock-tick on tmpfs; with leases off, in 0 of
# 450 each way). Two floatmount agents, or two nodes, are two clients,
# whose delegations the server does recall; the round-trip comparison
# (tests/bench/kernel_reference.sh) keeps delegations on.
guest "echo 0 >/proc/sys/fs/leases-enable" || die "could not turn off leases in the guest"
D=/export/$SUITE
guest "cd /tmp && (env FLOATMOUNT_TEST_KERNEL_CLIENT=127.0.0.1:/ \
FLOATMOUNT_TEST_KERNEL_CLIENT_SERVER_DIR=/export FLOATMOUNT_TEST_TIME_SCALE=$TIME_SCALE \
$D/$LOADER --library-path $D $D/integration_tests '--gtest_filter=$FILTER' \
--gtest_output=xml:$D/report.xml $GTEST_ARGS >$D/gtest.log 2>&1 & \
echo \$! >/tmp/kposix.pid; wait \$!; echo \$? >$D/rc) &" ||
  die "could not start the suite in the guest"

echo "running '$FILTER' in the guest (KPOSIX_TIMEOUT=$SUITE_TIMEOUT s)..."
START=$SECONDS
FINISHED=""
while ((SECONDS - START < SUITE_TIMEOUT)); do
  sleep 15
  if guest "test -e $D/rc" >/dev/null; then FINISHED=1; break; fi
  done_count=$(guest "grep -cE '^\[ +(OK|FAILED|SKIPPED) +\] .*\(' $D/gtest.log" || true)
  echo "  $((SECONDS - START)) s: ${done_count:-0} tests done"
done
if [[ -z $FINISHED ]]; then
  # shellcheck disable=SC2016  # expanded by the guest's shell
  guest 'kill $(cat /tmp/kposix.pid)' >/dev/null
  echo "the suite did not finish within $SUITE_TIMEOUT s; killed. Its log's end:"
  guest "tail -n 40 $D/gtest.log"
  exit 1
fi
echo "the suite ran in $((SECONDS - START)) s (exit $(guest "cat $D/rc"))"

# ---- the results, read back through the host's mount ------------------------

mkdir -p "$RESULTS"
cp "$MNT/$SUITE/gtest.log" "$RESULTS/gtest.log"
cp "$MNT/$SUITE/report.xml" "$RESULTS/report.xml" 2>/dev/null ||
  { tail -n 40 "$RESULTS/gtest.log"; die "the suite wrote no report (crashed?)"; }
status=0
python3 - "$RESULTS/report.xml" "$STRICT" <<'PY' || status=$?
import sys
import xml.etree.ElementTree as ET

passed, failed, skipped = [], [], []
for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = f"{case.get('classname')}.{case.get('name')}"
    failure = case.find("failure")
    skip = case.find("skipped")
    if failure is not None:
        # The first failure's text: "file:line", then what was expected.
        text = (failure.text or failure.get("message") or "").strip().splitlines()
        failed.append((name, "\n      ".join(l.rstrip() for l in text[:7])))
    elif skip is not None or case.get("result") == "skipped":
        msg = (skip.get("message") if skip is not None else "") or ""
        lines = [l for l in msg.strip().splitlines() if l.strip()]
        skipped.append((name, lines[-1] if lines else ""))
    elif case.get("status") == "run":
        passed.append(name)
total = len(passed) + len(failed) + len(skipped)
print(f"kernel client: {len(passed)} passed, {len(failed)} failed, "
      f"{len(skipped)} skipped of {total}")
for name, why in failed:
    print(f"  FAILED  {name}: {why}")
for name, why in skipped:
    print(f"  SKIPPED {name}: {why}")
sys.exit(3 if failed and sys.argv[2] == "1" else 0)
PY
echo "full log and report: $RESULTS/gtest.log, $RESULTS/report.xml"
exit "$status"
