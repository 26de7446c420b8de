#!/usr/bin/env bash
# fio benchmark: application-level I/O through floatmount's FUSE mount
# (NFSv4.1, and NFSv3 through libnfs: path v3),
# compared with a minimal FUSE passthrough over the server's own export
# directory (the FUSE ceiling), with the engine alone (`floatmount cp`), and
# with the mount through fault_proxy at +0 us and +BENCH_LATENCY_US.
#
# Usage (as root: FUSE mounts, drop_caches, ganesha's open_by_handle_at):
#   sudo tests/bench/fio_bench.sh [--baseline COMMIT]
# --baseline COMMIT (a hash, a branch, HEAD~1...): also build floatmount at
#   COMMIT and run its mount as path "base", each run alternating with the
#   current build's (path fm), with ratios this build / baseline. The
#   build is cached in BENCH_BASELINE_CACHE/<full hash>: the tree from
#   `git archive` (no worktree to register or prune; delete the directory
#   to drop it), built there in build/ (floatmount target only, ccache).
# Knobs (environment):
#   BENCH_SIZE_MIB=1024       checkpoint / restore file size (4 readers: 1/4 each)
#   BENCH_REPEAT=3            runs per row (the median is reported)
#   BENCH_NCONNECT=16         nconnect of the mounts and of `floatmount cp`
#   BENCH_LATENCY_US=1000     latency the second proxy adds per round trip
#   BENCH_RAND_MIB=256        4 KiB random read: stop after this much ...
#   BENCH_RAND_SECONDS=20     ... or after this many seconds (both also bound
#                             the 16-job random read, all jobs together)
#   BENCH_FILES=2000          small-file rows: files created, stat'ed, listed
#   BENCH_FILE_KIB=4          size of each small file
#   BENCH_PATHS="fm v3 pt cp px0 pxN"   which paths (floatmount NFSv4.1,
#                             floatmount NFSv3, passthrough, engine cp,
#                             floatmount via proxy +0 / +LATENCY; "base",
#                             the baseline's NFSv4.1 mount, is added by
#                             --baseline)
#   BENCH_BASELINE            same as --baseline (the option wins)
#   BENCH_BASELINE_CACHE=/var/cache/floatmount-tests/bench-baseline
#                             where baseline builds are kept
#   BENCH_BUILD_JOBS=2        ninja -j for the baseline build (run under nice)
#   BENCH_JOBS="write read par randread randread16 small"   which jobs
#   BENCH_FM_OPTS             extra -o options for the floatmount mounts
#   BENCH_BASE_OPTS           ... for the baseline's mounts instead (default:
#                             BENCH_FM_OPTS); with --baseline HEAD, measures
#                             an option against the default in one run
#   BENCH_PREFAULT=1          0 skips touching memory before measuring
#   BENCH_PLOT=1              0 skips the gnuplot chart
#   BENCH_INSTALL=1           0: do not apt-get install missing fio/gnuplot-nox
#   BENCH_TIMEOUT=600         seconds before one run counts as failed
#   BENCH_WAIT_IDLE=0         wait up to this many seconds for other processes
#                             to leave the CPUs alone (< 0.2 cores) first
#   BENCH_OUT=tests/bench/results   where fio-<date>.csv/.txt/.png go
#   BENCH_TMPDIR              parent of the temp dir (default /dev/shm if it
#                             has room, else /tmp)
#   FLOATMOUNT, FAULT_PROXY, GANESHA_SERVE   binaries (default: build/)
# Exit status: 0 when every run ran (whatever the figures), 1 when some runs
# failed (listed at the end; the table still printed), 2 when the benchmark
# could not be set up.
# Functions called through "$@" and trap look unreachable to ShellCheck 0.9
# (SC2317).
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPEAT=${BENCH_REPEAT:-3}
NCONNECT=${BENCH_NCONNECT:-16}
LATENCY_US=${BENCH_LATENCY_US:-1000}
RAND_MIB=${BENCH_RAND_MIB:-256}
RAND_SECONDS=${BENCH_RAND_SECONDS:-20}
FILES=${BENCH_FILES:-2000}
FILE_KIB=${BENCH_FILE_KIB:-4}
read -r -a PATHS <<<"${BENCH_PATHS:-fm v3 pt cp px0 pxN}"
read -r -a JOBS <<<"${BENCH_JOBS:-write read par randread randread16 small}"
read -r -a FM_OPTS <<<"${BENCH_FM_OPTS:-}"
read -r -a BASE_OPTS <<<"${BENCH_BASE_OPTS-${BENCH_FM_OPTS:-}}"
PREFAULT=${BENCH_PREFAULT:-1}
PLOT=${BENCH_PLOT:-1}
INSTALL=${BENCH_INSTALL:-1}
RUN_TIMEOUT=${BENCH_TIMEOUT:-600}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
OUT_DIR=${BENCH_OUT:-$REPO/tests/bench/results}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
FAULT_PROXY=${FAULT_PROXY:-$REPO/build/tests/harness/fault_proxy}
GANESHA_SERVE=${GANESHA_SERVE:-$REPO/build/tests/harness/ganesha_serve}

die() {
  echo "fio_bench: cannot run: $*" >&2
  exit 2
}
note() { echo "fio_bench: $*" >&2; }

BASELINE=${BENCH_BASELINE:-}
BASE_CACHE=${BENCH_BASELINE_CACHE:-/var/cache/floatmount-tests/bench-baseline}
BUILD_JOBS=${BENCH_BUILD_JOBS:-2}
while (($#)); do
  case $1 in
    --baseline)
      (($# >= 2)) || die "--baseline needs a commit"
      BASELINE=$2
      shift 2
      ;;
    --baseline=*)
      BASELINE=${1#*=}
      shift
      ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *) die "unknown argument '$1' (--baseline COMMIT, --help)" ;;
  esac
done

for knob in SIZE_MIB REPEAT NCONNECT LATENCY_US RAND_MIB RAND_SECONDS FILES FILE_KIB RUN_TIMEOUT WAIT_IDLE BUILD_JOBS; do
  is_uint "${!knob}" || die "$knob must be a non-negative integer (got '${!knob}')"
done
((SIZE_MIB >= 4 && SIZE_MIB % 4 == 0)) || die "BENCH_SIZE_MIB must be a multiple of 4, at least 4"
((REPEAT > 0 && RAND_MIB > 0 && RAND_SECONDS > 0 && FILES > 0 && FILE_KIB > 0)) ||
  die "BENCH_REPEAT, BENCH_RAND_*, BENCH_FILES and BENCH_FILE_KIB must be > 0"
((NCONNECT >= 1 && NCONNECT <= 64)) || die "BENCH_NCONNECT must be in 1..64"
((LATENCY_US > 0)) || die "BENCH_LATENCY_US must be > 0 (the +0 us proxy is always there)"
((BUILD_JOBS >= 1)) || die "BENCH_BUILD_JOBS must be >= 1"
declare -A WANT_PATH=() WANT_JOB=()
for p in "${PATHS[@]}"; do
  case $p in fm | base | v3 | pt | cp | px0 | pxN) WANT_PATH[$p]=1 ;; *) die "BENCH_PATHS: unknown path '$p' (fm v3 pt cp px0 pxN base)" ;; esac
done
if [[ -n $BASELINE ]]; then
  [[ -n ${WANT_PATH[base]:-} ]] || PATHS+=(base)
  WANT_PATH[base]=1
elif [[ -n ${WANT_PATH[base]:-} ]]; then
  die "path base needs --baseline COMMIT"
fi
for j in "${JOBS[@]}"; do
  case $j in
    write | read | par | randread | randread16 | small) WANT_JOB[$j]=1 ;;
    *) die "BENCH_JOBS: unknown job '$j' (write read par randread randread16 small)" ;;
  esac
done
SIZE_BYTES=$((SIZE_MIB * 1048576))
PART_MIB=$((SIZE_MIB / 4))
((RAND_MIB <= SIZE_MIB)) || RAND_MIB=$SIZE_MIB
CP_NC=$((NCONNECT / 4))
((CP_NC >= 1)) || CP_NC=1

# --- prerequisites ---------------------------------------------------------------
((EUID == 0)) || die "run as root (FUSE mounts, drop_caches, nfs-ganesha): sudo $0"
[[ -w /proc/sys/vm/drop_caches ]] || die "/proc/sys/vm/drop_caches is not writable"
[[ -c /dev/fuse ]] || die "/dev/fuse is missing"
missing_pkgs=()
command -v fio >/dev/null || missing_pkgs+=(fio)
if [[ $PLOT == 1 ]] && ! command -v gnuplot >/dev/null; then missing_pkgs+=(gnuplot-nox); fi
if ((${#missing_pkgs[@]})); then
  [[ $INSTALL == 1 ]] || die "missing: ${missing_pkgs[*]} (apt-get install ${missing_pkgs[*]})"
  note "installing ${missing_pkgs[*]} with apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_pkgs[@]}"; } \
    >/dev/null || die "apt-get install ${missing_pkgs[*]} failed"
fi
for tool in fio python3 g++ pkg-config fusermount3 timeout awk sort df stat dd cmp; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
pkg-config --exists fuse3 || die "libfuse3 headers missing (apt-get install libfuse3-dev)"
[[ -x $FLOATMOUNT ]] || die "$FLOATMOUNT missing (ninja -C $REPO/build floatmount)"
[[ -x $FAULT_PROXY ]] || die "$FAULT_PROXY missing (ninja -C $REPO/build fault_proxy)"
[[ -x $GANESHA_SERVE ]] || die "$GANESHA_SERVE missing (ninja -C $REPO/build ganesha_serve)"

# --- baseline build ------------------------------------------------------------------
# The tree at the commit comes from `git archive` into BASE_CACHE/<hash>
# (read-only use of the repository: nothing registered in its worktree list,
# so nothing goes stale when the cache is wiped), then cmake/ninja build
# only floatmount in <hash>/build, as in a checkout. CCACHE_BASEDIR is the
# tree and the build dir sits inside it as build/ does here, so compile
# lines match the developer tree's and unchanged files hit the shared
# cache. An flock serialises two runs building the same commit; a tree is
# renamed into place only once fully extracted, and ninja finishes a build
# an earlier run left half done.
BASE_HASH="" BASE_SHORT="" BASE_SUBJECT="" BASE_DIR="" BASE_SOURCE=""
build_baseline() {  # commit
  local lock_fd
  BASE_HASH=$(git -C "$REPO" rev-parse --verify --quiet "$1^{commit}") ||
    die "--baseline: '$1' is not a commit in $REPO"
  BASE_SHORT=$(git -C "$REPO" rev-parse --short "$BASE_HASH")
  BASE_SUBJECT=$(git -C "$REPO" log -1 --format=%s "$BASE_HASH")
  BASE_DIR=$BASE_CACHE/$BASE_HASH
  BASE_SOURCE=$BASE_DIR/build/agent/floatmount
  mkdir -p "$BASE_CACHE" || die "cannot create $BASE_CACHE"
  exec {lock_fd}>"$BASE_CACHE/$BASE_HASH.lock"
  flock "$lock_fd"
  if [[ ! -f $BASE_DIR/CMakeLists.txt ]]; then
    note "baseline $BASE_SHORT: extracting the tree into $BASE_DIR"
    rm -rf "$BASE_DIR" "$BASE_DIR.part"
    mkdir -p "$BASE_DIR.part"
    git -C "$REPO" archive "$BASE_HASH" | tar -x -C "$BASE_DIR.part" ||
      die "git archive $BASE_HASH failed"
    mv "$BASE_DIR.part" "$BASE_DIR"
  fi
  note "baseline $BASE_SHORT ($BASE_SUBJECT): building floatmount in $BASE_DIR/build" \
    "(log: $BASE_DIR/bench-build.log)"
  if ! (
    export CCACHE_DIR=${CCACHE_DIR:-/var/cache/floatmount-tests/ccache} CCACHE_BASEDIR=$BASE_DIR \
      CCACHE_NOHASHDIR=true
    cd "$BASE_DIR"
    [[ -f build/build.ninja ]] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
    nice cmake --build build -j "$BUILD_JOBS" --target floatmount
  ) >"$BASE_DIR/bench-build.log" 2>&1; then
    die "building baseline $BASE_SHORT failed: $(tail -n 20 "$BASE_DIR/bench-build.log")"
  fi
  exec {lock_fd}>&-
  [[ -x $BASE_SOURCE ]] || die "the baseline build made no $BASE_SOURCE"
}
if [[ -n $BASELINE ]]; then
  for tool in git tar flock cmake ninja; do
    command -v "$tool" >/dev/null || die "$tool not found (needed by --baseline)"
  done
  build_baseline "$BASELINE"
fi
FIO_JOBS=$SCRIPT_DIR/fio
for f in checkpoint-write.fio restore-read.fio parallel-read.fio random-read.fio random-read16.fio smallfiles.py; do
  [[ -f $FIO_JOBS/$f ]] || die "$FIO_JOBS/$f missing"
done
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NPROC=$(nproc)

# --- temp dir, cleanup --------------------------------------------------------------
# The temp dir holds the binaries, the mount points, the floatmount state dir
# and the `floatmount cp` write source (one test file); the prefault touches
# 3 test files' worth in it. The export (ganesha_serve's, under /tmp) holds
# the checkpoint, the restore file, the 4 reader files, the cp write target
# and the small files.
NEED_KIB=$(((SIZE_MIB * 4 + 256) * 1024))
EXPORT_NEED_KIB=$(((SIZE_MIB * 4 + 512) * 1024))
if [[ -n ${BENCH_TMPDIR:-} ]]; then
  TMP_PARENT=$BENCH_TMPDIR
elif [[ -d /dev/shm && $(avail_kib /dev/shm || echo 0) -ge $NEED_KIB ]]; then
  TMP_PARENT=/dev/shm
else
  TMP_PARENT=/tmp
fi
[[ $(avail_kib "$TMP_PARENT" || echo 0) -ge $NEED_KIB ]] ||
  die "$TMP_PARENT has less than $((NEED_KIB / 1024)) MiB free (lower BENCH_SIZE_MIB)"
[[ $(avail_kib /tmp || echo 0) -ge $EXPORT_NEED_KIB ]] ||
  die "/tmp (ganesha_serve's export) has less than $((EXPORT_NEED_KIB / 1024)) MiB free"

TMP=""
SERVE_PID=""
GANESHA_PID=""
PROXY_PIDS=()
BG_PIDS=()
declare -A MOUNT_KIND=() MOUNT_DAEMON=() MOUNT_BIN=()

# "major:minor" of the file system mounted at $1, empty when nothing is.
mount_dev() { awk -v m="$1" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo; }
is_mounted() { [[ -n $(mount_dev "$1") ]]; }

# Unmounts one of our mounts, politely first (floatmount commits and waits
# for its agent), then by aborting the FUSE connection; stops the daemon.
unmount_ours() {  # mountpoint
  local mnt=$1 kind=${MOUNT_KIND[$1]:-} daemon=${MOUNT_DAEMON[$1]:-} bin=${MOUNT_BIN[$1]:-$FLOATMOUNT} dev i
  if is_mounted "$mnt"; then
    if [[ $kind == floatmount ]]; then
      timeout 120 "$bin" unmount "$mnt" >"$TMP/unmount.log" 2>&1 ||
        note "floatmount unmount $mnt failed: $(tr '\n' ' ' <"$TMP/unmount.log")"
    else
      timeout 60 umount "$mnt" 2>/dev/null || timeout 60 fusermount3 -u "$mnt" 2>/dev/null || true
    fi
  fi
  if is_mounted "$mnt"; then
    note "$mnt still mounted: aborting its FUSE connection"
    dev=$(mount_dev "$mnt")
    echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
    umount -l "$mnt" 2>/dev/null || true
  fi
  if [[ -n $daemon ]]; then
    for ((i = 0; i < 100; i++)); do
      kill -0 "$daemon" 2>/dev/null || break
      sleep 0.1
    done
    stop_pid "$daemon" 5
  fi
  unset "MOUNT_KIND[$mnt]" "MOUNT_DAEMON[$mnt]" "MOUNT_BIN[$mnt]"
}

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  local pid mnt
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" 2; done
  for mnt in "${!MOUNT_KIND[@]}"; do unmount_ours "$mnt"; done
  for pid in "${PROXY_PIDS[@]}"; do stop_pid "$pid" 5; done
  [[ -n $SERVE_PID ]] && stop_pid "$SERVE_PID" 30
  [[ -n $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# Letters, digits, '.', '_' only: floatmount names its pid file after the
# mount point, escaping everything else.
TMP=$(mktemp -d "$TMP_PARENT/fmfio.XXXXXX")
chmod 755 "$TMP"
mkdir "$TMP/bin" "$TMP/state"
TMP_FS=$(findmnt -n -o FSTYPE -T "$TMP" 2>/dev/null || stat -f -c %T "$TMP")

# Private copies: other jobs may rebuild build/ while the benchmark runs.
FM_SOURCE=$FLOATMOUNT
FM_BUILT=$(date -r "$FLOATMOUNT" '+%Y-%m-%d %H:%M:%S' 2>/dev/null || echo "?")
cp "$FLOATMOUNT" "$TMP/bin/floatmount" || die "cannot copy $FLOATMOUNT"
cp "$FAULT_PROXY" "$TMP/bin/fault_proxy" || die "cannot copy $FAULT_PROXY"
cp "$GANESHA_SERVE" "$TMP/bin/ganesha_serve" || die "cannot copy $GANESHA_SERVE"
FLOATMOUNT=$TMP/bin/floatmount
FAULT_PROXY=$TMP/bin/fault_proxy
GANESHA_SERVE=$TMP/bin/ganesha_serve
"$FLOATMOUNT" --version >/dev/null 2>&1 || die "$FM_SOURCE does not run (being rebuilt?)"
# Named floatmount too (in its own dir), as mount_floatmount finds agents by name.
BASE_FLOATMOUNT=""
if [[ -n $BASELINE ]]; then
  mkdir "$TMP/bin/base"
  BASE_FLOATMOUNT=$TMP/bin/base/floatmount
  cp "$BASE_SOURCE" "$BASE_FLOATMOUNT" || die "cannot copy $BASE_SOURCE"
  "$BASE_FLOATMOUNT" --version >/dev/null 2>&1 || die "$BASE_SOURCE does not run"
fi

PASSTHROUGH=$TMP/bin/bench_passthrough
if [[ -n ${WANT_PATH[pt]:-} ]]; then
  # shellcheck disable=SC2046  # pkg-config prints several words on purpose
  g++ -std=c++20 -O2 -Wall -Wextra -o "$PASSTHROUGH" "$SCRIPT_DIR/passthrough/passthrough.cc" \
    $(pkg-config --cflags --libs fuse3) 2>"$TMP/passthrough-build.log" ||
    die "building the passthrough failed: $(cat "$TMP/passthrough-build.log")"
fi

# --- server, proxies ------------------------------------------------------------------
read_kv() {  # file key -> value of the first key=value line
  sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1
}

start_server() {
  local i out=$TMP/serve.out
  # --nfsv3: NFSv3 and MOUNT too (for path v3; starts rpcbind if needed).
  "$GANESHA_SERVE" --nfsv3 >"$out" 2>"$TMP/serve.err" </dev/null &
  SERVE_PID=$!
  for ((i = 0; i < 600; i++)); do
    GANESHA_PORT=$(read_kv "$out" port)
    EXPORT_DIR=$(read_kv "$out" export_dir)
    PSEUDO=$(read_kv "$out" pseudo)
    MOUNT_PORT=$(read_kv "$out" mount_port)
    [[ -n $MOUNT_PORT ]] && break
    if ! kill -0 "$SERVE_PID" 2>/dev/null; then
      wait "$SERVE_PID" 2>/dev/null || true
      SERVE_PID=""
      die "ganesha_serve exited: $(tail -n 20 "$TMP/serve.err")"
    fi
    sleep 0.1
  done
  [[ -n $PSEUDO && -d $EXPORT_DIR ]] || die "ganesha_serve did not come up within 60 s"
  GANESHA_PID=$(pgrep -P "$SERVE_PID" -x ganesha.nfsd | head -n 1 || true)
  [[ -n $GANESHA_PID ]] || die "cannot find ganesha.nfsd under ganesha_serve (pid $SERVE_PID)"
  EXPORT_FS=$(findmnt -n -o FSTYPE -T "$EXPORT_DIR" 2>/dev/null || stat -f -c %T "$EXPORT_DIR")
}

declare -A PROXY_PORT=() PROXY_PID=()
start_proxy() {  # latency_us
  local lat=$1 out=$TMP/proxy-$1.out i port=""
  "$FAULT_PROXY" --listen 127.0.0.1:0 --target "127.0.0.1:$GANESHA_PORT" --latency-us "$lat" \
    >"$out" 2>"$TMP/proxy-$lat.err" &
  PROXY_PIDS+=("$!")
  PROXY_PID[$lat]=$!
  for ((i = 0; i < 100; i++)); do
    port=$(read_kv "$out" port)
    [[ -n $port ]] && break
    kill -0 "${PROXY_PID[$lat]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || die "fault_proxy (latency $lat us) did not start: $(cat "$TMP/proxy-$lat.err")"
  PROXY_PORT[$lat]=$port
}

# --- mounts ---------------------------------------------------------------------------
mount_floatmount() {  # mountpoint port [more -o options [binary]]
  local mnt=$1 port=$2 bin=${4:-$FLOATMOUNT} opts pidfile i
  mkdir -p "$mnt"
  opts="port=$port,nconnect=$NCONNECT,state_dir=$TMP/state${3:+,$3}"
  if [[ $bin == "$FLOATMOUNT" ]]; then
    for i in "${FM_OPTS[@]}"; do opts+=",$i"; done
  else
    for i in "${BASE_OPTS[@]}"; do opts+=",$i"; done
  fi
  MOUNT_KIND[$mnt]=floatmount
  MOUNT_BIN[$mnt]=$bin
  timeout 60 "$bin" -o "$opts" "127.0.0.1:$PSEUDO" "$mnt" >"$TMP/mount.log" 2>&1 ||
    die "floatmount mount failed: $(tr '\n' ' ' <"$TMP/mount.log")"
  is_mounted "$mnt" || die "floatmount returned but $mnt is not mounted"
  pidfile=/run/floatmount/$(tr / - <<<"${mnt#/}").pid
  MOUNT_DAEMON[$mnt]=$(cat "$pidfile" 2>/dev/null || true)
  if [[ -z ${MOUNT_DAEMON[$mnt]} ]]; then
    MOUNT_DAEMON[$mnt]=$(pgrep -f -x -- ".*floatmount -o $opts 127.0.0.1:$PSEUDO $mnt" | head -n 1 || true)
  fi
  [[ -n ${MOUNT_DAEMON[$mnt]} ]] || die "cannot find the agent serving $mnt"
}

mount_passthrough() {  # mountpoint
  local mnt=$1 i
  mkdir -p "$mnt"
  MOUNT_KIND[$mnt]=passthrough
  "$PASSTHROUGH" "$EXPORT_DIR" "$mnt" >"$TMP/passthrough.log" 2>&1 &
  MOUNT_DAEMON[$mnt]=$!
  for ((i = 0; i < 100; i++)); do
    is_mounted "$mnt" && return 0
    kill -0 "${MOUNT_DAEMON[$mnt]}" 2>/dev/null || break
    sleep 0.1
  done
  die "the passthrough did not mount: $(cat "$TMP/passthrough.log")"
}

# Unmeasured check that the mount reads the right bytes.
check_mount() {  # mountpoint
  local n=$((SIZE_MIB < 64 ? SIZE_MIB : 64))
  cmp -s -n $((n * 1048576)) "$1/seq.bin" "$EXPORT_DIR/seq.bin" ||
    die "reading seq.bin through $1 does not give the server's bytes"
}

# --- accounting helpers (as engine_bench.sh) --------------------------------------------

CHILD_MS=0

median2() {
  (($#)) || { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f\n", m }'
}

# --- preparation before a run (not timed) ------------------------------------------------
# Cold client, warm server: drop every clean page, dentry and inode on the
# machine (the FUSE mount's cache with them), then read the files on the
# server's side so ganesha (or the passthrough) serves them from memory.
cold() {  # files in the export to warm...
  local f
  sync
  echo 3 >/proc/sys/vm/drop_caches
  for f in "$@"; do cat "$EXPORT_DIR/$f" >/dev/null; done
}
prep_write() { sync; }
prep_read() { cold seq.bin; }
prep_par() { cold par.0 par.1 par.2 par.3; }
prep_small_cold() {  # the small-file dir of this run, warmed on the server's side
  sync
  echo 3 >/proc/sys/vm/drop_caches
  ls -lU "$EXPORT_DIR/$(small_dir "$CUR_RUN")" >/dev/null
}
small_dir() { echo "small.$CUR_PATH.$1"; }

# --- single runs -------------------------------------------------------------------------
# Each run_* sets RUN_OK (1/0), RUN_MSG, RUN_MIBS and RUN_OPS (the figures, or
# "-"), RUN_NOTE (shown in the table), RUN_BYTES and RUN_IOS (the work done:
# bytes moved, and requests made, i.e. fio's I/Os or the small files
# handled; the CPU figures are per unit of these), RUN_T0/RUN_T1 (wall
# clock, us) and RUN_CPU0/RUN_CPU1 (children's CPU ms).
RUN_OK=0 RUN_MSG="" RUN_MIBS=- RUN_OPS=- RUN_NOTE="" RUN_BYTES=0 RUN_IOS=0
start_clock() {
  children_ms
  RUN_CPU0=$CHILD_MS
  RUN_T0=$(now_us)
}
stop_clock() {
  RUN_T1=$(now_us)
  children_ms
  RUN_CPU1=$CHILD_MS
}

# fio's JSON (one job: group_reporting) -> "io_bytes MiB/s IOPS total_ios" of
# the direction that moved data, or "ERR ..." when fio reports an error.
fio_figures() {
  python3 - "$1" <<'EOF'
import json, sys
job = json.load(open(sys.argv[1]))["jobs"][0]
if job.get("error"):
    print("ERR fio error", job["error"])
    sys.exit()
d = job["write"] if job["write"]["io_bytes"] > 0 else job["read"]
print(d["io_bytes"], "%.1f" % (d["bw_bytes"] / 1048576.0), "%.1f" % d["iops"], d["total_ios"])
EOF
}

run_fio() {  # job-file expected-bytes (0: any); in $CUR_MNT
  local job=$1 dir=$CUR_MNT expect=$2 rc=0 fig
  rm -f "$TMP/fio.json"
  start_clock
  # random-read16.fio: each of the 16 jobs gets a sixteenth of the file and
  # of the data (SIZE_MIB MiB / 16 = SIZE_MIB * 64 KiB, a multiple of 4 KiB).
  FIO_DIR=$dir FIO_SIZE=${SIZE_MIB}m FIO_PART=${PART_MIB}m FIO_RAND_IO=${RAND_MIB}m \
    FIO_RAND16_PART=$((SIZE_MIB * 64))k FIO_RAND16_IO=$((RAND_MIB * 64))k \
    FIO_RAND_SECONDS=${RAND_SECONDS}s timeout "$RUN_TIMEOUT" fio --output-format=json \
    --output="$TMP/fio.json" "$FIO_JOBS/$job" >"$TMP/run.log" 2>&1 || rc=$?
  stop_clock
  RUN_OK=0 RUN_MIBS=- RUN_OPS=- RUN_NOTE="" RUN_BYTES=0 RUN_IOS=0
  fig=$(fio_figures "$TMP/fio.json" 2>>"$TMP/run.log" || true)
  local -a f
  read -r -a f <<<"${fig:-ERR no output}"
  if ((rc != 0)) || [[ ${f[0]} == ERR ]] || ((expect > 0 && f[0] != expect)); then
    RUN_MSG="fio $job exit $rc (${fig:-no JSON}): $(tail -c 300 "$TMP/run.log" | tr '\n' ' ')"
    return
  fi
  RUN_OK=1 RUN_MIBS=${f[1]} RUN_OPS=${f[2]} RUN_BYTES=${f[0]} RUN_IOS=${f[3]}
}

run_small() {  # phase (create|stat|list); in $CUR_MNT
  local phase=$1 dir rc=0 line
  dir=$CUR_MNT/$(small_dir "$CUR_RUN")
  start_clock
  timeout "$RUN_TIMEOUT" python3 "$FIO_JOBS/smallfiles.py" "$phase" "$dir" "$FILES" \
    $((FILE_KIB * 1024)) >"$TMP/run.log" 2>&1 || rc=$?
  stop_clock
  RUN_OK=0 RUN_MIBS=- RUN_OPS=- RUN_NOTE="" RUN_BYTES=0 RUN_IOS=0
  line=$(grep -m1 '^files_per_s=' "$TMP/run.log" || true)
  if ((rc != 0)) || [[ -z $line ]]; then
    RUN_MSG="smallfiles.py $phase exit $rc: $(tail -c 300 "$TMP/run.log" | tr '\n' ' ')"
    return
  fi
  RUN_OK=1 RUN_OPS=${line#files_per_s=} RUN_IOS=$FILES
}

# `floatmount cp` runs: the figure is the rate cp prints itself (OPEN to
# COMMIT/CLOSE), comparable with fio's, which does not count process start
# and connection setup either; the wall-clock rate goes into the note.
cp_one() {  # log src dst nconnect -> exit status
  local log=$1 rc=0
  timeout "$RUN_TIMEOUT" "$FLOATMOUNT" cp --nconnect "$4" "$2" "$3" >"$log" 2>&1 || rc=$?
  return "$rc"
}
cp_rate() {  # log expected-bytes -> MiB/s, or nothing
  local line
  line=$(grep -m1 '^copied ' "$1" || true)
  [[ $line == "copied $2 bytes "* && $line =~ :\ ([0-9.]+)\ MiB/s ]] && echo "${BASH_REMATCH[1]}"
}
fm_url() { echo "nfs://127.0.0.1:$GANESHA_PORT$PSEUDO/$1"; }

run_cp() {  # write|read
  local rc=0 rate wall
  start_clock
  if [[ $1 == write ]]; then
    cp_one "$TMP/run.log" "$TMP/src.bin" "$(fm_url cp-write.bin)" "$NCONNECT" || rc=$?
  else
    cp_one "$TMP/run.log" "$(fm_url seq.bin)" /dev/null "$NCONNECT" || rc=$?
  fi
  stop_clock
  RUN_OK=0 RUN_MIBS=- RUN_OPS=- RUN_NOTE="" RUN_BYTES=0 RUN_IOS=0
  rate=$(cp_rate "$TMP/run.log" "$SIZE_BYTES" || true)
  if ((rc != 0)) || [[ -z $rate ]]; then
    RUN_MSG="floatmount cp $1 exit $rc: $(tail -c 300 "$TMP/run.log" | tr '\n' ' ')"
    return
  fi
  wall=$(awk -v b="$SIZE_BYTES" -v w="$((RUN_T1 - RUN_T0))" 'BEGIN { printf "%.1f", b / 1048576 / (w / 1e6) }')
  RUN_OK=1 RUN_MIBS=$rate RUN_NOTE=$wall RUN_BYTES=$SIZE_BYTES
}

run_cp_par() {  # 4 processes, par.0..3 -> /dev/null, NCONNECT/4 connections each
  local i rc=0 rate sum=0 wall
  local -a pids=()
  start_clock
  for i in 0 1 2 3; do
    cp_one "$TMP/run.$i.log" "$(fm_url "par.$i")" /dev/null "$CP_NC" &
    pids+=("$!")
  done
  BG_PIDS=("${pids[@]}")
  for i in 0 1 2 3; do wait "${pids[$i]}" || rc=$?; done
  stop_clock
  BG_PIDS=()
  RUN_OK=0 RUN_MIBS=- RUN_OPS=- RUN_NOTE="" RUN_BYTES=0 RUN_IOS=0
  for i in 0 1 2 3; do
    rate=$(cp_rate "$TMP/run.$i.log" $((PART_MIB * 1048576)) || true)
    if ((rc != 0)) || [[ -z $rate ]]; then
      RUN_MSG="floatmount cp par.$i exit $rc: $(tail -c 300 "$TMP/run.$i.log" | tr '\n' ' ')"
      return
    fi
    sum=$(awk -v a="$sum" -v b="$rate" 'BEGIN { printf "%.1f", a + b }')
  done
  wall=$(awk -v b="$SIZE_BYTES" -v w="$((RUN_T1 - RUN_T0))" 'BEGIN { printf "%.1f", b / 1048576 / (w / 1e6) }')
  RUN_OK=1 RUN_MIBS=$sum RUN_NOTE=$wall RUN_BYTES=$((PART_MIB * 4 * 1048576))
}

# --- measurement ---------------------------------------------------------------------------
# Results are kept per "job|path" key.
declare -A V_MIBS=() V_OPS=() V_RUNS=() V_APP=() V_FUSE=() V_SRV=() V_PRX=() V_OTH=() V_NOTE=() V_STATUS=()
declare -A V_CCPU=() V_SCPU=() V_ACPU=()
FAILURES=()
STEP=0
TOTAL_STEPS=0
CUR_PATH="" CUR_RUN=0 CUR_FUSE_PID="" CUR_PROXY_PID=""

# The paths measured together (GROUP: one, or fm and base) and what
# select_path makes current for the run_* and prep_* functions.
declare -A PATH_MNT=() PATH_DAEMON=() PATH_PROXY=()
GROUP=()
CUR_MNT=""
select_path() {  # path
  CUR_PATH=$1 CUR_MNT=${PATH_MNT[$1]:-} CUR_FUSE_PID=${PATH_DAEMON[$1]:-} CUR_PROXY_PID=${PATH_PROXY[$1]:-}
}

# Per-run figures of each "job|path" key, space-separated, until
# measure_done takes their medians. Used through namerefs, which ShellCheck
# does not follow.
# shellcheck disable=SC2034
declare -A R_MIBS=() R_OPS=() R_APP=() R_FUSE=() R_SRV=() R_PRX=() R_OTH=() R_NOTES=() R_RUNS=()
# shellcheck disable=SC2034
declare -A R_CCPU=() R_SCPU=() R_ACPU=() R_FAILED=()
push() {  # array-name key value
  local -n list_=$1
  list_[$2]+="${list_[$2]:+ }$3"
}
list_median() {  # median-function array-name key
  # shellcheck disable=SC2178  # a nameref to an associative array
  local -n lists_=$2
  local -a vals_=()
  read -r -a vals_ <<<"${lists_[$3]:-}"
  "$1" "${vals_[@]}"
}

# measure JOB PREP COMMAND...: BENCH_REPEAT runs of COMMAND on each path of
# GROUP (PREP: a function run untimed before each run, or -). With two paths
# (this build and the baseline) their runs alternate, odd repeats in GROUP's
# order and even ones reversed, so that drifting load and any order effect
# fall on both alike.
measure() {
  local job=$1 prep=$2 r i n=${#GROUP[@]} p
  shift 2
  for ((r = 1; r <= REPEAT; r++)); do
    for ((i = 0; i < n; i++)); do
      if ((r % 2)); then p=${GROUP[i]}; else p=${GROUP[n - 1 - i]}; fi
      select_path "$p"
      measure_run "$job" "$prep" "$r" "$@"
    done
  done
  for p in "${GROUP[@]}"; do
    select_path "$p"
    measure_done "$job"
  done
}

measure_run() {  # job prep run command... (on the current path)
  local job=$1 prep=$2 r=$3
  shift 3
  local key="$job|$CUR_PATH" g0 g1 d0 d1 p0 p1 m0 m1 wall primary
  STEP=$((STEP + 1))
  CUR_RUN=$r
  [[ $prep == - ]] || "$prep"
  m0=$(machine_busy_ticks)
  g0=$(pid_ticks "$GANESHA_PID")
  d0=$(pid_ticks "$CUR_FUSE_PID")
  p0=$(pid_ticks "$CUR_PROXY_PID")
  "$@"
  g1=$(pid_ticks "$GANESHA_PID")
  d1=$(pid_ticks "$CUR_FUSE_PID")
  p1=$(pid_ticks "$CUR_PROXY_PID")
  m1=$(machine_busy_ticks)
  wall=$((RUN_T1 - RUN_T0))
  ((wall > 0)) || wall=1
  if ((RUN_OK != 1)); then
    R_FAILED[$key]=1
    FAILURES+=("$(job_label "$job") / $(path_label "$CUR_PATH") run $r: $RUN_MSG")
    note "[$STEP/$TOTAL_STEPS] $job $(path_label "$CUR_PATH") run $r/$REPEAT: FAILED: $RUN_MSG"
    return 0
  fi
  local a d s p o cc_s sc_s ac_s work scale
  # CPU per unit of work: seconds per GiB moved, or ms per 1000 requests
  # (ms * 1000 / requests). The client is the FUSE daemon, or cp itself.
  if [[ $(cpu_unit "$job") == s/GiB ]]; then work=$RUN_BYTES scale=1073741824; else work=$RUN_IOS scale=1000000; fi
  read -r a d s p o cc_s sc_s ac_s < <(awk -v w="$wall" -v cc="$((RUN_CPU1 - RUN_CPU0))" -v g="$((g1 - g0))" \
    -v dd="$((d1 - d0))" -v pp="$((p1 - p0))" -v m="$((m1 - m0))" -v hz="$CLK_TCK" -v ncpu="$NPROC" \
    -v work="$work" -v scale="$scale" -v client_is_app="$([[ $CUR_PATH == cp ]] && echo 1 || echo 0)" '
    BEGIN {
      sec = w / 1e6
      a = cc / 1000 / sec; d = dd / hz / sec; s = g / hz / sec; p = pp / hz / sec
      o = m / hz / sec - a - d - s - p
      if (o > ncpu - a - d - s - p) o = ncpu - a - d - s - p  # tick granularity on short runs
      if (o < 0) o = 0
      printf "%.2f %.2f %.2f %.2f %.2f ", a, d, s, p, o
      if (work > 0) {
        client = client_is_app ? cc / 1000 : dd / hz
        printf "%.3f %.3f %.3f\n", client * scale / work, g / hz * scale / work, cc / 1000 * scale / work
      } else print "- - -" }')
  push R_APP "$key" "$a"
  push R_FUSE "$key" "$d"
  push R_SRV "$key" "$s"
  push R_PRX "$key" "$p"
  push R_OTH "$key" "$o"
  if [[ $cc_s != - ]]; then
    push R_CCPU "$key" "$cc_s"
    push R_SCPU "$key" "$sc_s"
    push R_ACPU "$key" "$ac_s"
  fi
  [[ $RUN_MIBS == - ]] || push R_MIBS "$key" "$RUN_MIBS"
  [[ $RUN_OPS == - ]] || push R_OPS "$key" "$RUN_OPS"
  [[ -z $RUN_NOTE ]] || push R_NOTES "$key" "$RUN_NOTE"
  primary=$RUN_MIBS
  [[ $RUN_OPS == - ]] || primary=$RUN_OPS
  push R_RUNS "$key" "$primary"
  note "[$STEP/$TOTAL_STEPS] $job $(path_label "$CUR_PATH") run $r/$REPEAT: $RUN_MIBS MiB/s," \
    "$RUN_OPS ops/s${RUN_NOTE:+ (wall $RUN_NOTE MiB/s)}; cores: app $a fuse $d server $s proxy $p other $o;" \
    "CPU $(cpu_unit "$job"): client $cc_s server $sc_s (bytes $RUN_BYTES, requests $RUN_IOS," \
    "ticks: client $((d1 - d0)) server $((g1 - g0)), children $((RUN_CPU1 - RUN_CPU0)) ms)"
}

measure_done() {  # job: the medians of the current path's runs
  local key="$1|$CUR_PATH"
  V_MIBS[$key]=$(list_median median R_MIBS "$key")
  V_OPS[$key]=$(list_median median R_OPS "$key")
  V_RUNS[$key]=${R_RUNS[$key]:--}
  V_APP[$key]=$(list_median median2 R_APP "$key")
  V_FUSE[$key]=$(list_median median2 R_FUSE "$key")
  V_SRV[$key]=$(list_median median2 R_SRV "$key")
  V_PRX[$key]=$(list_median median2 R_PRX "$key")
  V_OTH[$key]=$(list_median median2 R_OTH "$key")
  V_CCPU[$key]=$(list_median median2 R_CCPU "$key")
  V_SCPU[$key]=$(list_median median2 R_SCPU "$key")
  V_ACPU[$key]=$(list_median median2 R_ACPU "$key")
  V_NOTE[$key]=""
  if [[ -n ${R_NOTES[$key]:-} ]]; then V_NOTE[$key]="wall $(list_median median R_NOTES "$key") MiB/s"; fi
  V_STATUS[$key]=ok
  [[ -z ${R_FAILED[$key]:-} ]] || V_STATUS[$key]=FAIL
}

# --- labels ---------------------------------------------------------------------------------
JOB_ORDER=(write read par randread randread16 create stat list)
PATH_ORDER=(fm base v3 pt cp px0 pxN)
job_label() {
  case $1 in
    write) echo "checkpoint write" ;;
    read) echo "restore read, cold" ;;
    par) echo "4 readers, cold" ;;
    randread) echo "4k random read, cold" ;;
    randread16) echo "4k random read x16, cold" ;;
    create) echo "small files: create" ;;
    stat) echo "small files: stat, cold" ;;
    list) echo "small files: ls -l, cold" ;;
  esac
}
if ((LATENCY_US % 1000 == 0)); then LAT_LABEL="$((LATENCY_US / 1000))ms"; else LAT_LABEL="${LATENCY_US}us"; fi
path_label() {
  case $1 in
    fm) echo "floatmount" ;;
    base) echo "baseline $BASE_SHORT" ;;
    v3) echo "floatmount NFSv3" ;;
    pt) echo "passthrough" ;;
    cp) echo "engine cp" ;;
    px0) echo "floatmount+proxy0" ;;
    pxN) echo "floatmount+proxy$LAT_LABEL" ;;
  esac
}
unit_of() {
  case $1 in
    write | read | par) echo "MiB/s" ;;
    randread | randread16) echo "IOPS" ;;
    *) echo "files/s" ;;
  esac
}
cpu_unit() {  # job -> the unit of its CPU-per-work figures
  case $1 in
    write | read | par) echo "s/GiB" ;;
    randread | randread16) echo "ms/1k IO" ;;
    *) echo "ms/1k files" ;;
  esac
}
primary_of() {  # job|path -> the figure ratios use: MiB/s, IOPS or files/s
  if [[ $(unit_of "${1%%|*}") == "MiB/s" ]]; then echo "${V_MIBS[$1]:--}"; else echo "${V_OPS[$1]:--}"; fi
}

# --- run -------------------------------------------------------------------------------------
DATE_HUMAN=$(date '+%Y-%m-%d %H:%M:%S %z')
DATE_FILE=$(date '+%Y%m%d-%H%M%S')
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=unknown
MEM_MIB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
FM_VERSION=$("$FLOATMOUNT" --version 2>&1 | head -n 1 || true)
FIO_VERSION=$(fio --version 2>/dev/null || echo "?")
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ $GIT_REV != "?" ]] && ! git -C "$REPO" diff --quiet HEAD -- 2>/dev/null; then
  GIT_REV="$GIT_REV+dirty"
fi

n_mount_rows=0
for j in write read par randread randread16; do [[ -n ${WANT_JOB[$j]:-} ]] && n_mount_rows=$((n_mount_rows + 1)); done
[[ -n ${WANT_JOB[small]:-} ]] && n_mount_rows=$((n_mount_rows + 3))
n_cp_rows=0
for j in write read par; do [[ -n ${WANT_JOB[$j]:-} ]] && n_cp_rows=$((n_cp_rows + 1)); done
for p in "${PATHS[@]}"; do
  if [[ $p == cp ]]; then
    TOTAL_STEPS=$((TOTAL_STEPS + n_cp_rows * REPEAT))
  else
    TOTAL_STEPS=$((TOTAL_STEPS + n_mount_rows * REPEAT))
  fi
done

note "temp dir $TMP ($TMP_FS); test file $SIZE_MIB MiB"
start_server
note "ganesha_serve pid $SERVE_PID (ganesha.nfsd $GANESHA_PID) on 127.0.0.1:$GANESHA_PORT, export $EXPORT_DIR ($EXPORT_FS)"
[[ -n ${WANT_PATH[px0]:-} ]] && start_proxy 0
[[ -n ${WANT_PATH[pxN]:-} ]] && start_proxy "$LATENCY_US"

PRE_OTHER=$(idle_other_cores)
if ((WAIT_IDLE > 0)); then
  waited=0
  while awk -v o="$PRE_OTHER" 'BEGIN { exit !(o >= 0.2) }' && ((waited < WAIT_IDLE)); do
    if ((waited % 30 == 0)); then
      note "other processes use $PRE_OTHER cores; waiting (up to ${WAIT_IDLE}s)"
    fi
    PRE_OTHER=$(idle_other_cores)
    waited=$((waited + 1))
  done
fi
PRE_LOADAVG=$(cut -d' ' -f1-3 /proc/loadavg)
note "before the runs: other processes use $PRE_OTHER cores; load average $PRE_LOADAVG"

# Test files, written on the server's side: the restore file, the 4 reader
# files (quarters of it), the checkpoint (fio overwrites it in place: it
# exists at full size, so fio neither lays it out nor truncates it) and the
# `floatmount cp` write source in the temp dir.
dd if=/dev/urandom of="$EXPORT_DIR/seq.bin" bs=1M count="$SIZE_MIB" iflag=fullblock status=none
for i in 0 1 2 3; do
  dd if="$EXPORT_DIR/seq.bin" of="$EXPORT_DIR/par.$i" bs=1M skip=$((i * PART_MIB)) count="$PART_MIB" status=none
done
cp "$EXPORT_DIR/seq.bin" "$EXPORT_DIR/ckpt.bin"
cp "$EXPORT_DIR/seq.bin" "$TMP/src.bin"
sync
if [[ $PREFAULT == 1 && $TMP_FS == tmpfs ]]; then
  # Memory the VM's balloon took back costs a host fault per page on first
  # use (see engine_bench.sh / README): touch some before measuring.
  note "touching $((SIZE_MIB * 3)) MiB of memory"
  dd if=/dev/zero of="$TMP/prefault" bs=1M count=$((SIZE_MIB * 3)) status=none
  rm -f "$TMP/prefault"
fi

# The server's warm-up, unmeasured, before any path: one write of the test
# size through the engine (it also creates the cp write target and checks
# the bytes). ganesha's cost per READ depends on what it served before:
# glibc raises its mmap threshold when a large buffer (a 1 MiB WRITE's) is
# freed, and until then each large READ buffer is mapped and unmapped
# again, a page fault per 4 KiB (here 4-6 s of ganesha's CPU per GiB read
# on a fresh server, 0.4-2.9 s after one big write). Without this, a path
# measured after the cp path's own write read 1.5x faster than one
# measured before it.
if [[ -n ${WANT_PATH[fm]:-}${WANT_PATH[base]:-}${WANT_PATH[v3]:-}${WANT_PATH[cp]:-}${WANT_PATH[px0]:-}${WANT_PATH[pxN]:-} ]]; then
  note "warming the server: one $SIZE_MIB MiB write through floatmount cp"
  cp_one "$TMP/warmup.log" "$TMP/src.bin" "$(fm_url cp-write.bin)" "$NCONNECT" ||
    die "warm-up floatmount cp failed: $(cat "$TMP/warmup.log")"
  cmp -s "$TMP/src.bin" "$EXPORT_DIR/cp-write.bin" || die "floatmount cp wrote different bytes"
fi

run_mount_jobs() {  # on each path of GROUP (mounted)
  if [[ -n ${WANT_JOB[write]:-} ]]; then
    measure write prep_write run_fio checkpoint-write.fio "$SIZE_BYTES"
  fi
  if [[ -n ${WANT_JOB[read]:-} ]]; then
    measure read prep_read run_fio restore-read.fio "$SIZE_BYTES"
  fi
  if [[ -n ${WANT_JOB[par]:-} ]]; then
    measure par prep_par run_fio parallel-read.fio "$SIZE_BYTES"
  fi
  if [[ -n ${WANT_JOB[randread]:-} ]]; then
    measure randread prep_read run_fio random-read.fio 0
  fi
  if [[ -n ${WANT_JOB[randread16]:-} ]]; then
    measure randread16 prep_read run_fio random-read16.fio 0
  fi
  if [[ -n ${WANT_JOB[small]:-} ]]; then
    measure create prep_write run_small create
    measure stat prep_small_cold run_small stat
    measure list prep_small_cold run_small list
  fi
}

mount_path() {  # path: mounts it (PATH_MNT, PATH_DAEMON, PATH_PROXY) and checks its bytes
  local path=$1 mnt=$TMP/mnt_$1
  PATH_PROXY[$path]=""
  case $path in
    fm) mount_floatmount "$mnt" "$GANESHA_PORT" ;;
    base) mount_floatmount "$mnt" "$GANESHA_PORT" "" "$BASE_FLOATMOUNT" ;;
    v3) mount_floatmount "$mnt" "$GANESHA_PORT" "vers=3,mountport=$MOUNT_PORT" ;;
    pt) mount_passthrough "$mnt" ;;
    px0)
      mount_floatmount "$mnt" "${PROXY_PORT[0]}"
      PATH_PROXY[$path]=${PROXY_PID[0]}
      ;;
    pxN)
      mount_floatmount "$mnt" "${PROXY_PORT[$LATENCY_US]}"
      PATH_PROXY[$path]=${PROXY_PID[$LATENCY_US]}
      ;;
  esac
  PATH_MNT[$path]=$mnt PATH_DAEMON[$path]=${MOUNT_DAEMON[$mnt]}
  note "$(path_label "$path"): mounted at $mnt (daemon pid ${MOUNT_DAEMON[$mnt]})"
  check_mount "$mnt"
}

for path in "${PATH_ORDER[@]}"; do
  [[ -n ${WANT_PATH[$path]:-} ]] || continue
  # The baseline's runs alternate with the current build's (below, with fm).
  if [[ $path == base && -n ${WANT_PATH[fm]:-} ]]; then continue; fi
  GROUP=("$path")
  if [[ $path == fm && -n ${WANT_PATH[base]:-} ]]; then GROUP+=(base); fi
  if [[ $path == cp ]]; then
    select_path cp
    [[ -n ${WANT_JOB[write]:-} ]] && measure write prep_write run_cp write
    [[ -n ${WANT_JOB[read]:-} ]] && measure read prep_read run_cp read
    [[ -n ${WANT_JOB[par]:-} ]] && measure par prep_par run_cp_par
    continue
  fi
  for p in "${GROUP[@]}"; do mount_path "$p"; done
  run_mount_jobs
  for p in "${GROUP[@]}"; do
    unmount_ours "${PATH_MNT[$p]}"
    # The small files were created through this mount; remove them on the
    # server's side now that nothing holds them.
    rm -rf "$EXPORT_DIR"/small."$p".*
  done
done

# --- report ---------------------------------------------------------------------------------
fmt_ratio() {  # a b -> a/b with 2 decimals, or -
  if [[ $1 == - || $2 == - || -z $1 || -z $2 ]]; then echo -; return; fi
  awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

HEADERS=(job path "MiB/s" "IOPS | files/s" "vs passthrough" "vs engine cp" "drop +0->+$LAT_LABEL"
  "vs baseline" "client CPU" "server CPU" "client CPU vs baseline" "app cores" "fuse cores" "server cores" "proxy cores" "other cores" "runs" "note")
CSV_HEADER="job,path,mib_s,ops_s,ops_unit,ratio_to_passthrough,ratio_to_engine_cp,drop_pct_proxy0_to_${LATENCY_US}us,app_cores,fuse_cores,server_cores,proxy_cores,other_cores,runs,note,status,client_cpu,server_cpu,app_cpu,cpu_unit,ratio_to_baseline,client_cpu_ratio_to_baseline"
# Without --baseline the table leaves out the two baseline columns (the CSV
# keeps them, empty, so that its columns stay put).
drop_baseline_columns() {  # array-name: removes "vs baseline" and "client CPU vs baseline"
  local -n cols_=$1
  [[ -z $BASELINE ]] || return 0
  unset 'cols_[7]' 'cols_[10]'
  cols_=("${cols_[@]}")
}
drop_baseline_columns HEADERS
declare -a CELLS=() row=()
CSV_LINES=()
for job in "${JOB_ORDER[@]}"; do
  for path in "${PATH_ORDER[@]}"; do
    key="$job|$path"
    [[ -n ${V_STATUS[$key]:-} ]] || continue
    v=$(primary_of "$key")
    r_pt=-
    if [[ $path == pt ]]; then
      r_pt="1.00 (ref)"
    elif [[ -n ${V_STATUS[$job|pt]:-} ]]; then
      r_pt=$(fmt_ratio "$v" "$(primary_of "$job|pt")")
    fi
    r_cp=-
    if [[ $path == cp ]]; then
      r_cp="1.00 (ref)"
    elif [[ ($path == fm || $path == base) && -n ${V_STATUS[$job|cp]:-} ]]; then
      r_cp=$(fmt_ratio "$v" "$(primary_of "$job|cp")")
    fi
    drop=-
    if [[ $path == pxN && -n ${V_STATUS[$job|px0]:-} ]]; then
      drop=$(awk -v a="$v" -v b="$(primary_of "$job|px0")" \
        'BEGIN { if (a != "-" && b != "-" && b > 0) printf "%.1f%%", (1 - a / b) * 100; else print "-" }')
    fi
    c_mibs=- c_ops=-
    case $job in
      write | read | par) c_mibs=${V_MIBS[$key]} ;;
      randread | randread16) c_mibs=${V_MIBS[$key]} c_ops=${V_OPS[$key]} ;;
      *) c_ops=${V_OPS[$key]} ;;
    esac
    csv_ops=$c_ops
    [[ $c_ops == - ]] || c_ops="$c_ops $(unit_of "$job")"
    [[ $path == px0 || $path == pxN ]] || V_PRX[$key]=-
    r_base=- r_base_cpu=-
    if [[ $path == base ]]; then
      r_base="1.00 (ref)" r_base_cpu="1.00 (ref)"
    elif [[ $path == fm && -n ${V_STATUS[$job|base]:-} ]]; then
      r_base=$(fmt_ratio "$v" "$(primary_of "$job|base")")
      r_base_cpu=$(fmt_ratio "${V_CCPU[$key]}" "${V_CCPU[$job|base]}")
    fi
    c_ccpu=${V_CCPU[$key]} c_scpu=${V_SCPU[$key]}
    [[ $c_ccpu == - ]] || c_ccpu="$c_ccpu $(cpu_unit "$job")"
    [[ $c_scpu == - ]] || c_scpu="$c_scpu $(cpu_unit "$job")"
    cell_v=$c_mibs
    [[ ${V_STATUS[$key]} == ok ]] || cell_v="$cell_v (FAIL)"
    row=("$(job_label "$job")" "$(path_label "$path")" "$cell_v" "$c_ops" "$r_pt" "$r_cp" "$drop"
      "$r_base" "$c_ccpu" "$c_scpu" "$r_base_cpu" "${V_APP[$key]}" "${V_FUSE[$key]}" "${V_SRV[$key]}" "${V_PRX[$key]}" "${V_OTH[$key]}"
      "${V_RUNS[$key]}" "${V_NOTE[$key]}")
    drop_baseline_columns row
    CELLS+=("${row[@]}")
    CSV_LINES+=("\"$(job_label "$job")\",\"$(path_label "$path")\",$c_mibs,$csv_ops,$(unit_of "$job"),${r_pt% (ref)},${r_cp% (ref)},${drop%\%},${V_APP[$key]},${V_FUSE[$key]},${V_SRV[$key]},${V_PRX[$key]},${V_OTH[$key]},${V_RUNS[$key]// /;},\"${V_NOTE[$key]}\",${V_STATUS[$key]},${V_CCPU[$key]},${V_SCPU[$key]},${V_ACPU[$key]},$(cpu_unit "$job"),${r_base% (ref)},${r_base_cpu% (ref)}")
  done
done

NUM_FIRST=2 NUM_LAST=$((${#HEADERS[@]} - 3))  # the numeric columns: all but job, path, runs and note
table_widths

report() {
  echo "floatmount fio benchmark  $DATE_HUMAN"
  echo "machine: $NPROC CPUs, $CPU_MODEL, ${MEM_MIB} MiB RAM, kernel $(uname -sr)"
  echo "floatmount: ${FM_VERSION:-?} (git $GIT_REV; $FM_SOURCE built $FM_BUILT);" \
    "nfs-ganesha $(pkg_version nfs-ganesha); $FIO_VERSION; libfuse3 $(pkg-config --modversion fuse3)"
  echo "files: $SIZE_MIB MiB checkpoint/restore file, 4 x $PART_MIB MiB reader files, random read" \
    "$RAND_MIB MiB or ${RAND_SECONDS}s, $FILES small files of $FILE_KIB KiB; export on $EXPORT_FS" \
    "($EXPORT_DIR); temp dir on $TMP_FS"
  if [[ -n $BASELINE ]]; then
    echo "baseline: git $BASE_SHORT ($BASE_SUBJECT; --baseline $BASELINE), built in $BASE_DIR/build;" \
      "$("$BASE_FLOATMOUNT" --version 2>&1 | head -n 1 || true); its mount runs alternate with" \
      "floatmount's (odd repeats floatmount first, even repeats baseline first); vs baseline = this build / baseline"
  fi
  echo "paths: floatmount mount (nconnect=$NCONNECT${FM_OPTS[*]:+, ${FM_OPTS[*]}}), FUSE passthrough" \
    "over the export dir (no network), engine cp = floatmount cp (nconnect $NCONNECT; 4 readers:" \
    "4 processes x nconnect $CP_NC), mount through fault_proxy +0 us / +$LATENCY_US us"
  echo "figures: medians of $REPEAT runs; fio's own rate (open files to end of job, end_fsync" \
    "included); engine cp: the rate cp prints (OPEN to COMMIT/CLOSE; 4 readers: sum of the 4)," \
    "wall-clock rate in the note; small files: timed in smallfiles.py"
  echo "cold = drop_caches, then the files read on the server's side; cores = CPU / wall time of" \
    "the command: app = fio/python/cp, fuse = the FUSE daemon (floatmount agent / passthrough)"
  echo "client / server CPU = CPU time per unit of work (median of the runs' own ratios): s per GiB" \
    "moved, ms per 1000 I/Os (random read) or per 1000 files; client = the FUSE daemon" \
    "(engine cp: cp itself), server = ganesha; from /proc ticks (1/$CLK_TCK s), coarse on short runs"
  local other_max=0.00 k
  for k in "${!V_OTH[@]}"; do
    if [[ ${V_OTH[$k]} != - ]]; then
      other_max=$(awk -v a="$other_max" -v b="${V_OTH[$k]}" 'BEGIN { printf "%.2f", (b > a) ? b : a }')
    fi
  done
  echo "other load: $PRE_OTHER cores busy just before the runs (load average $PRE_LOADAVG);" \
    "up to $other_max cores (per-row median) during them"
  if awk -v a="$PRE_OTHER" -v b="$other_max" 'BEGIN { exit !(a >= 0.2 || b >= 0.2) }'; then
    echo "WARNING: other processes used the CPUs during this run; on a 2-core box the figures" \
      "are then not comparable with a quiet run (see the 'other cores' column)"
  fi
  echo
  print_cells "${HEADERS[@]}"
  local total=0 c
  for ((c = 0; c < NCOL; c++)); do total=$((total + WIDTH[c] + 2)); done
  printf '%*s\n' "$((total - 2))" '' | tr ' ' '-'
  local prev=""
  for ((k = 0; k < ${#CELLS[@]}; k += NCOL)); do
    if [[ -n $prev && ${CELLS[k]} != "$prev" ]]; then echo; fi
    prev=${CELLS[k]}
    print_cells "${CELLS[@]:k:NCOL}"
  done
}

mkdir -p "$OUT_DIR"
CSV_FILE=$OUT_DIR/fio-$DATE_FILE.csv
{
  echo "$CSV_HEADER"
  printf '%s\n' "${CSV_LINES[@]}"
} >"$CSV_FILE"
echo
report | tee "$OUT_DIR/fio-$DATE_FILE.txt"
echo
echo "CSV: $CSV_FILE"

# Chart: one data file per panel, rows = jobs, columns = the paths that have
# a figure for one of the jobs ("?" = none), and a colour per path.
path_color() {
  case $1 in
    fm) echo "#1f77b4" ;;
    base) echo "#7f7f7f" ;;
    v3) echo "#17becf" ;;
    pt) echo "#2ca02c" ;;
    cp) echo "#ff7f0e" ;;
    px0) echo "#9467bd" ;;
    pxN) echo "#d62728" ;;
  esac
}
PANEL_PATHS=0 PANEL_COLORS=""
write_panel() {  # file jobs...
  local file=$1 job path text
  shift
  local -a cols=()
  for path in "${PATH_ORDER[@]}"; do
    for job in "$@"; do
      if [[ $(primary_of "$job|$path") != - ]]; then cols+=("$path"); break; fi
    done
  done
  PANEL_PATHS=${#cols[@]} PANEL_COLORS=""
  {
    printf '"job"'
    for path in "${cols[@]}"; do
      printf ' "%s"' "$(path_label "$path")"
      PANEL_COLORS+=" $(path_color "$path")"
    done
    echo
    for job in "$@"; do
      text=$(job_label "$job")
      [[ $job == randread ]] && text="4k random read (IOPS)"
      [[ $job == randread16 ]] && text="4k random read x16 (IOPS)"
      printf '"%s"' "${text/, cold/}"
      for path in "${cols[@]}"; do
        printf ' %s' "$(primary_of "$job|$path" | sed 's/^-$/?/')"
      done
      echo
    done
  } >"$file"
}
if [[ $PLOT == 1 ]]; then
  mb_jobs=() op_jobs=()
  for j in write read par; do [[ -n ${WANT_JOB[$j]:-} ]] && mb_jobs+=("$j"); done
  [[ -n ${WANT_JOB[randread]:-} ]] && op_jobs+=(randread)
  [[ -n ${WANT_JOB[randread16]:-} ]] && op_jobs+=(randread16)
  [[ -n ${WANT_JOB[small]:-} ]] && op_jobs+=(create stat list)
  write_panel "$TMP/plot-mib.dat" "${mb_jobs[@]}"
  P_MIB=$PANEL_PATHS C_MIB=$PANEL_COLORS
  write_panel "$TMP/plot-ops.dat" "${op_jobs[@]}"
  P_OPS=$PANEL_PATHS C_OPS=$PANEL_COLORS
  ((P_MIB > 0)) || mb_jobs=()
  ((P_OPS > 0)) || op_jobs=()
  PNG=$OUT_DIR/fio-$DATE_FILE.png
  if ((${#mb_jobs[@]} + ${#op_jobs[@]} == 0)); then
    note "nothing to plot"
  elif gnuplot -e "mibfile='$TMP/plot-mib.dat'; opsfile='$TMP/plot-ops.dat'; outfile='$PNG';
      title='floatmount fio benchmark $DATE_HUMAN, $SIZE_MIB MiB, git $GIT_REV';
      nmib=${#mb_jobs[@]}; nops=${#op_jobs[@]}; pmib=$P_MIB; pops=$P_OPS;
      cmib='${C_MIB# }'; cops='${C_OPS# }'" \
    "$SCRIPT_DIR/plot.gnuplot" >"$TMP/gnuplot.log" 2>&1 && [[ -s $PNG ]]; then
    echo "chart: $PNG"
  else
    note "gnuplot failed: $(tr '\n' ' ' <"$TMP/gnuplot.log")"
  fi
fi

if ((${#FAILURES[@]})); then
  echo
  echo "fio_bench: ${#FAILURES[@]} run(s) failed:"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
exit 0
