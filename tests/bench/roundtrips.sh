#!/usr/bin/env bash
# Round trips per operation (issue 18): a fixed script of file operations
# (tests/bench/roundtrips/ops.py) on a floatmount mount whose server is
# BENCH_LATENCY_US away (fault_proxy in front of a private nfs-ganesha).
# For each operation it prints the time per operation, that time in round
# trips (the round trips on the caller's critical path: what a slow
# network multiplies; a CLOSE the kernel does not wait for does not count),
# and the compounds the agent sent (`floatmount status --json`), next to
# the protocol's minimum. With a latency far above this machine's noise
# (5 ms against ~0.1 ms of loopback and CPU), the figures do not depend on
# the machine.
#
# The mount uses actimeo=60 (BENCH_FM_OPTS adds options), so that no cached
# name or attribute expires during a row and the counts are repeatable;
# "again" rows rely on it.
#
# Usage (root: FUSE mount, ganesha): sudo tests/bench/roundtrips.sh [ROWS]
#   ROWS: comma-separated row keys to run only those (create, read,
#   read_warm, stat_missing, stat_missing_again, mkdir, rmdir, rename, chmod,
#   symlink, readlink, unlink, lock, ls, readdir, git, tar). A row chosen
#   without the row that makes its files (rename, chmod and unlink use
#   create's, rmdir mkdir's) makes them on the server: one LOOKUP more.
# Knobs: BENCH_LATENCY_US=5000 BENCH_N=20 (repetitions of single-file rows)
#   BENCH_DIR_ENTRIES=10000 BENCH_GIT_FILES=2000 BENCH_TAR_FILES=1000
#   BENCH_FM_OPTS (extra -o options, comma-separated)
#   FLOATMOUNT, FAULT_PROXY, GANESHA_SERVE (binaries; default build/)
# Exit status: 0 ran, 1 an operation failed, 2 could not be set up.
# Takes about 1.5 minutes at the defaults.
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

LATENCY_US=${BENCH_LATENCY_US:-5000}
N=${BENCH_N:-20}
FM_OPTS=${BENCH_FM_OPTS:-}
ROWS=${1:-}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
FAULT_PROXY=${FAULT_PROXY:-$REPO/build/tests/harness/fault_proxy}
GANESHA_SERVE=${GANESHA_SERVE:-$REPO/build/tests/harness/ganesha_serve}

die() { echo "roundtrips: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "run as root"
for b in "$FLOATMOUNT" "$FAULT_PROXY" "$GANESHA_SERVE"; do [[ -x $b ]] || die "$b missing"; done
is_uint "$LATENCY_US" && ((LATENCY_US > 0)) || die "BENCH_LATENCY_US must be a positive number of microseconds"
is_uint "$N" && ((N > 0)) || die "BENCH_N must be a positive number"

TMP=$(mktemp -d /tmp/fmrt.XXXXXX)
chmod 755 "$TMP"
MNT=$TMP/mnt
SERVE_PID="" PROXY_PID="" AGENT_PID=""

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  unmount_floatmount "$FLOATMOUNT" "$MNT"
  [[ -n $AGENT_PID ]] && stop_pid "$AGENT_PID" 5
  [[ -n $PROXY_PID ]] && stop_pid "$PROXY_PID" 5
  [[ -n $SERVE_PID ]] && stop_pid "$SERVE_PID" 30
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMP/bin" "$MNT"
cp "$FLOATMOUNT" "$FAULT_PROXY" "$GANESHA_SERVE" "$TMP/bin/"
FLOATMOUNT=$TMP/bin/floatmount

start_ganesha "$TMP" || die "could not start the server"
start_proxy "$TMP" "$PORT" "$LATENCY_US" || die "could not start the proxy"

OPTS="port=$PROXY_PORT,actimeo=60,state_dir=$TMP/state${FM_OPTS:+,$FM_OPTS}"
timeout 60 "$FLOATMOUNT" -o "$OPTS" "127.0.0.1:$PSEUDO" "$MNT" >"$TMP/mount.log" 2>&1 ||
  die "mount failed: $(tr '\n' ' ' <"$TMP/mount.log")"
is_mounted "$MNT" || die "not mounted"
AGENT_PID=$(cat "/run/floatmount/$(tr / - <<<"${MNT#/}").pid" 2>/dev/null || true)

rtt_ms=$(awk -v u="$LATENCY_US" 'BEGIN { printf "%.3f", u / 1000 }')
echo "# round trips: $(date -u +%FT%TZ), git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)," \
  "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mount -o $OPTS via fault_proxy +${LATENCY_US} us per round trip; $N of each single-file operation"
echo "# RTs/op = ms/op / $rtt_ms ms (the added round trip; loopback and CPU add ~0.1 ms each)"
BENCH_TMP=$TMP /usr/bin/python3 "$SCRIPT_DIR/roundtrips/ops.py" "$MNT" "$EXPORT_DIR" "$rtt_ms" "$N" \
  "$FLOATMOUNT" "$ROWS"
