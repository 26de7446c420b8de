#!/usr/bin/env bash
# Shared-mount latency: how long another user's stat and small-file read
# take on a floatmount mount while many processes write large files (issue
# 14, "a blocked writer never holds the thread another user's stat needs").
#
# One mount (allow_other, cache_size=64M, noac so that every stat reaches the
# daemon) through fault_proxy at +BENCH_LATENCY_US per round trip. A prober
# (tests/bench/probe/probe.py, run as uid/gid BENCH_PROBE_UID) stats and reads
# BENCH_FILES small files in turn for BENCH_SECONDS:
#   1. alone: the ceiling (what the added latency alone costs);
#   2. while BENCH_WRITERS processes each write BENCH_WRITE_MIB with dd
#      (bs=1M, conv=fsync) over and over;
#   3. a control: the same prober on a second mount of the export (its own
#      connections and session) under the same writers: what the server and
#      the CPU cost, without what the writers' mount shares with the prober;
#   4. a control: the same on a third mount straight to the server (no
#      proxy, no added latency) under the same writers: what the server and
#      the CPU cost without the proxy's threads;
#   5. a control: the same prober on the server's own directory (no FUSE,
#      no network) under the same writers: what CPU contention alone costs.
# Prints p50/p99/max of both, in ms, and the target: p99 under load within
# 3 round trips (3 x latency) of the ceiling's p99.
#
# Usage (root: FUSE mount, ganesha): sudo tests/bench/shared_mount_latency.sh
# Knobs: BENCH_LATENCY_US=5000 BENCH_WRITERS=32 BENCH_WRITE_MIB=64
#   BENCH_SECONDS=20 BENCH_FILES=20 BENCH_PROBE_UID=4242 BENCH_PAUSE_MS=20
#   BENCH_CACHE=64M BENCH_FM_OPTS (extra -o options, comma-separated)
#   FLOATMOUNT, FAULT_PROXY, GANESHA_SERVE (binaries; default build/)
# Exit status: 0 ran (whatever the figures), 2 could not be set up.
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

LATENCY_US=${BENCH_LATENCY_US:-5000}
WRITERS=${BENCH_WRITERS:-32}
WRITE_MIB=${BENCH_WRITE_MIB:-64}
SECONDS_=${BENCH_SECONDS:-20}
FILES=${BENCH_FILES:-20}
PROBE_UID=${BENCH_PROBE_UID:-4242}
PAUSE_MS=${BENCH_PAUSE_MS:-20}
CACHE=${BENCH_CACHE:-64M}
FM_OPTS=${BENCH_FM_OPTS:-}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
FAULT_PROXY=${FAULT_PROXY:-$REPO/build/tests/harness/fault_proxy}
GANESHA_SERVE=${GANESHA_SERVE:-$REPO/build/tests/harness/ganesha_serve}

die() { echo "shared_mount_latency: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "run as root"
for b in "$FLOATMOUNT" "$FAULT_PROXY" "$GANESHA_SERVE"; do [[ -x $b ]] || die "$b missing"; done

TMP=$(mktemp -d /tmp/fmlat.XXXXXX)
chmod 755 "$TMP"
MNT=$TMP/mnt
SERVE_PID="" PROXY_PID="" AGENT_PID=""
WRITER_PIDS=()

cleanup() {
  local rc=$? pid
  set +e
  trap - EXIT INT TERM
  for pid in "${WRITER_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${WRITER_PIDS[@]}"; do wait "$pid" 2>/dev/null; done

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

# The prober's files, made on the server's side; the writers' directory.
mkdir -p "$EXPORT_DIR/small" "$EXPORT_DIR/big"
for ((i = 0; i < FILES; i++)); do head -c 4096 /dev/urandom >"$EXPORT_DIR/small/f$i"; done
chmod -R a+rX "$EXPORT_DIR/small"

OPTS="port=$PROXY_PORT,allow_other,noac,cache_size=$CACHE,state_dir=$TMP/state${FM_OPTS:+,$FM_OPTS}"
timeout 60 "$FLOATMOUNT" -o "$OPTS" "127.0.0.1:$PSEUDO" "$MNT" >"$TMP/mount.log" 2>&1 ||
  die "mount failed: $(tr '\n' ' ' <"$TMP/mount.log")"
is_mounted "$MNT" || die "not mounted"
AGENT_PID=$(cat "/run/floatmount/$(tr / - <<<"${MNT#/}").pid" 2>/dev/null || true)

probe() {
  timeout $((SECONDS_ + 120)) setpriv --reuid="$PROBE_UID" --regid="$PROBE_UID" --clear-groups \
    /usr/bin/python3 "$SCRIPT_DIR/probe/probe.py" "$MNT/small" "$SECONDS_" "$PAUSE_MS"
}

echo "# shared mount latency: $(date -u +%FT%TZ), git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo ?)," \
  "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# mount -o $OPTS via fault_proxy +${LATENCY_US} us; prober uid $PROBE_UID, $FILES files of 4 KiB, ${SECONDS_} s"
CEIL=$(probe) || die "prober failed (alone)"
# The agent's own per-operation figures (round trip | whole call), after the
# prober alone and again after the loaded run (cumulative): where a wait is.
"$FLOATMOUNT" status "$MNT" 2>/dev/null | sed -n '/^  latency/,$p' >"$TMP/latency.alone" || true

for ((w = 0; w < WRITERS; w++)); do
  (
    dd_pid=""
    trap '[[ -n $dd_pid ]] && kill "$dd_pid" 2>/dev/null; wait; exit 0' TERM
    while :; do
      dd if=/dev/zero of="$MNT/big/w$w" bs=1M count="$WRITE_MIB" conv=fsync status=none \
        2>>"$TMP/dd.err" &
      dd_pid=$!
      if wait "$dd_pid"; then echo >>"$TMP/passes"; else sleep 1; fi
    done
  ) &
  WRITER_PIDS+=("$!")
done
sleep 3  # the writers fill the cache first
P0=$(wc -l <"$TMP/passes" 2>/dev/null || echo 0)
T0=$(now_us)
LOADED=$(probe) || die "prober failed (loaded)"
T1=$(now_us)
P1=$(wc -l <"$TMP/passes" 2>/dev/null || echo 0)
"$FLOATMOUNT" status "$MNT" 2>/dev/null | sed -n '/^  latency/,$p' >"$TMP/latency.loaded" || true
# Control: the same prober on a second mount of the same export through
# the same proxy (its own connections and session, no writers of its own)
# under the same writers: what the server and this machine's CPU cost,
# without anything the writers' mount shares with the prober.
MNT2=$TMP/mnt2
mkdir -p "$MNT2"
SECOND=""
if timeout 60 "$FLOATMOUNT" -o "${OPTS/state_dir=$TMP\/state/state_dir=$TMP/state2}" \
  "127.0.0.1:$PSEUDO" "$MNT2" >>"$TMP/mount.log" 2>&1; then
  SECOND=$(timeout $((SECONDS_ + 120)) setpriv --reuid="$PROBE_UID" --regid="$PROBE_UID" --clear-groups \
    /usr/bin/python3 "$SCRIPT_DIR/probe/probe.py" "$MNT2/small" "$SECONDS_" "$PAUSE_MS") || SECOND=""
  timeout 120 "$FLOATMOUNT" unmount "$MNT2" >/dev/null 2>&1 || umount -l "$MNT2"
fi
# Control: a third mount straight to the server, not through the proxy:
# with no latency added, a tail here is the server's and the CPU's.
MNT3=$TMP/mnt3
mkdir -p "$MNT3"
DIRECT=""
OPTS3=${OPTS/state_dir=$TMP\/state/state_dir=$TMP/state3}
if timeout 60 "$FLOATMOUNT" -o "${OPTS3/port=$PROXY_PORT/port=$PORT}" \
  "127.0.0.1:$PSEUDO" "$MNT3" >>"$TMP/mount.log" 2>&1; then
  DIRECT=$(timeout $((SECONDS_ + 120)) setpriv --reuid="$PROBE_UID" --regid="$PROBE_UID" --clear-groups \
    /usr/bin/python3 "$SCRIPT_DIR/probe/probe.py" "$MNT3/small" "$SECONDS_" "$PAUSE_MS") || DIRECT=""
  timeout 120 "$FLOATMOUNT" unmount "$MNT3" >/dev/null 2>&1 || umount -l "$MNT3"
fi
# Control: the same prober on the server's own directory (no FUSE, no
# network) under the same writers: what CPU contention alone costs here.
LOCAL=$(timeout $((SECONDS_ + 120)) setpriv --reuid="$PROBE_UID" --regid="$PROBE_UID" --clear-groups \
  /usr/bin/python3 "$SCRIPT_DIR/probe/probe.py" "$EXPORT_DIR/small" "$SECONDS_" "$PAUSE_MS") ||
  die "prober failed (local)"

ms=$(awk -v u="$LATENCY_US" 'BEGIN { printf "%.1f", u / 1000 }')
printf '%-28s %-6s %7s %9s %9s %9s\n' "row" "op" "n" "p50 ms" "p99 ms" "max ms"
row() {  # label output
  local label=$1 line
  while read -r line; do
    # shellcheck disable=SC2086
    set -- $line
    printf '%-28s %-6s %7s %9s %9s %9s\n' "$label" "$1" "${2#n=}" "${3#p50=}" "${4#p99=}" "${5#max=}"
  done <<<"$2"
}
row "ceiling (prober alone)" "$CEIL"
row "with $WRITERS writers" "$LOADED"
[[ -n $SECOND ]] && row "second mount, $WRITERS writers" "$SECOND"
[[ -n $DIRECT ]] && row "direct mount (+0), $WRITERS w" "$DIRECT"
row "local dir, $WRITERS writers" "$LOCAL"
echo "added latency: $ms ms per round trip; target: loaded p99 <= ceiling p99 + 3 x $ms ms"
echo "writers: $(((P1 - P0) * WRITE_MIB)) MiB written and fsynced during the loaded probe" \
  "($(((P1 - P0) * WRITE_MIB * 1000000 / (T1 - T0))) MiB/s, whole dd passes only)"
echo "# the agent's latency figures after the prober alone:"
cat "$TMP/latency.alone"
echo "# and after the loaded run (both runs counted):"
cat "$TMP/latency.loaded"
