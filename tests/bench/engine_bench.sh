#!/usr/bin/env bash
# Engine benchmark: floatmount's NFSv4.1 engine (`floatmount cp`) against
# libnfs's nfs-cp, on a private nfs-ganesha on loopback, directly and through
# fault_proxy with 0 us and with BENCH_LATENCY_US of added round-trip latency.
#
# Usage (as root: ganesha's VFS FSAL needs open_by_handle_at):
#   sudo tests/bench/engine_bench.sh
# Knobs (environment):
#   BENCH_SIZE_MIB=1024       size of the test file
#   BENCH_REPEAT=3            runs per direct measurement (the median is reported)
#   BENCH_PROXY_REPEAT=REPEAT runs per measurement through the proxy
#   BENCH_LATENCY_US=1000     latency the second proxy adds to each round trip
#   BENCH_NCONNECT="1 4 16"   floatmount --nconnect values
#   BENCH_PARALLEL=4          nfs-cp processes in the parallel read row
#   BENCH_CEILINGS=1          0 skips the loopback TCP / local dd ceiling rows
#   BENCH_PREFAULT=1          0 skips touching tmpfs memory before measuring
#   BENCH_TIMEOUT=600         seconds before one run counts as failed
#   BENCH_WAIT_IDLE=0         wait up to this many seconds for other processes
#                             to leave the CPUs alone (< 0.2 cores) first
#   BENCH_OUT=tests/bench/results   where engine-<date>.csv/.txt go
#   BENCH_TMPDIR              parent of the temp dir (default /dev/shm if it
#                             has room, else /tmp)
#   FLOATMOUNT, FAULT_PROXY   binaries (default: the repo's build/ tree)
#   BENCH_FLOATMOUNT_ARGS     extra options for every `floatmount cp`
# Exit status: 0 when every measurement ran (whatever the figures), 1 when
# some runs failed (listed at the end; the table still printed), 2 when the
# benchmark could not be set up.
# The run_* functions and cleanup are called through "$@" and trap, which
# ShellCheck 0.9 reports as unreachable code (SC2317).
# shellcheck disable=SC2317
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

SIZE_MIB=${BENCH_SIZE_MIB:-1024}
REPEAT=${BENCH_REPEAT:-3}
PROXY_REPEAT=${BENCH_PROXY_REPEAT:-$REPEAT}
LATENCY_US=${BENCH_LATENCY_US:-1000}
read -r -a NCONNECTS <<<"${BENCH_NCONNECT:-1 4 16}"
PARALLEL=${BENCH_PARALLEL:-4}
CEILINGS=${BENCH_CEILINGS:-1}
PREFAULT=${BENCH_PREFAULT:-1}
RUN_TIMEOUT=${BENCH_TIMEOUT:-600}
WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
OUT_DIR=${BENCH_OUT:-$REPO/tests/bench/results}
FLOATMOUNT=${FLOATMOUNT:-$REPO/build/agent/floatmount}
FAULT_PROXY=${FAULT_PROXY:-$REPO/build/tests/harness/fault_proxy}
read -r -a FM_EXTRA <<<"${BENCH_FLOATMOUNT_ARGS:-}"

die() {
  echo "engine_bench: cannot run: $*" >&2
  exit 2
}
note() { echo "engine_bench: $*" >&2; }

for knob in SIZE_MIB REPEAT PROXY_REPEAT LATENCY_US PARALLEL RUN_TIMEOUT WAIT_IDLE; do
  is_uint "${!knob}" || die "$knob must be a non-negative integer (got '${!knob}')"
done
((SIZE_MIB > 0 && REPEAT > 0 && PROXY_REPEAT > 0 && PARALLEL > 0)) ||
  die "BENCH_SIZE_MIB, BENCH_REPEAT, BENCH_PROXY_REPEAT and BENCH_PARALLEL must be > 0"
((${#NCONNECTS[@]} > 0)) || die "BENCH_NCONNECT is empty"
for nc in "${NCONNECTS[@]}"; do
  if ! is_uint "$nc" || ((nc < 1 || nc > 64)); then die "BENCH_NCONNECT: '$nc' is not in 1..64"; fi
done
SIZE_BYTES=$((SIZE_MIB * 1024 * 1024))

# --- prerequisites -----------------------------------------------------------
((EUID == 0)) || die "run as root (nfs-ganesha's VFS FSAL needs open_by_handle_at): sudo $0"
GANESHA=$(command -v ganesha.nfsd || true)
[[ -n $GANESHA ]] || die "ganesha.nfsd not found (apt-get install nfs-ganesha nfs-ganesha-vfs)"
NFS_CP=$(command -v nfs-cp || true)
[[ -n $NFS_CP ]] || die "nfs-cp not found (apt-get install libnfs-utils)"
[[ -x $FLOATMOUNT ]] || die "$FLOATMOUNT missing (cmake -S $REPO -B $REPO/build -G Ninja && ninja -C $REPO/build floatmount fault_proxy)"
[[ -x $FAULT_PROXY ]] || die "$FAULT_PROXY missing (ninja -C $REPO/build fault_proxy)"
for tool in dd timeout awk sort df stat; do
  command -v "$tool" >/dev/null || die "$tool not found"
done
HAVE_PERL=0
if perl -MIO::Socket::INET -e 1 2>/dev/null; then HAVE_PERL=1; fi
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
NPROC=$(nproc)

# --- temp dir, cleanup ---------------------------------------------------------
# Footprint: the test file, the write source, the write destination and
# PARALLEL nfs-cp outputs, plus 256 MiB of slack.
NEED_KIB=$(((SIZE_MIB * (3 + PARALLEL) + 256) * 1024))
if [[ -n ${BENCH_TMPDIR:-} ]]; then
  TMP_PARENT=$BENCH_TMPDIR
elif [[ -d /dev/shm && $(avail_kib /dev/shm || echo 0) -ge $NEED_KIB ]]; then
  TMP_PARENT=/dev/shm
else
  TMP_PARENT=/tmp
fi
[[ $(avail_kib "$TMP_PARENT" || echo 0) -ge $NEED_KIB ]] ||
  die "$TMP_PARENT has less than $((NEED_KIB / 1024)) MiB free (lower BENCH_SIZE_MIB)"

TMP=""
GANESHA_PID=""
PROXY_PIDS=()
BG_PIDS=()

cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM HUP
  local pid
  for pid in "${BG_PIDS[@]}"; do stop_pid "$pid" 2; done
  for pid in "${PROXY_PIDS[@]}"; do stop_pid "$pid" 5; done
  [[ -n $GANESHA_PID ]] && stop_pid "$GANESHA_PID" 20
  if ((rc != 0)) && [[ -n $TMP && -f $TMP/ganesha.log && ${BENCH_KEEP_LOG:-0} == 1 ]]; then
    cp "$TMP/ganesha.log" "/tmp/engine_bench-ganesha.log" && note "ganesha log kept in /tmp/engine_bench-ganesha.log"
  fi
  [[ -n $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

TMP=$(mktemp -d "$TMP_PARENT/floatmount-bench.XXXXXX")
chmod 755 "$TMP"
EXPORT_DIR=$TMP/export
mkdir -m 777 "$EXPORT_DIR"
mkdir "$TMP/recovery"
TMP_FS=$(stat -f -c %T "$TMP")

# Run private copies: other jobs may rebuild build/ while the benchmark runs.
FM_SOURCE=$FLOATMOUNT
FM_BUILT=$(date -r "$FLOATMOUNT" '+%Y-%m-%d %H:%M:%S' 2>/dev/null || echo "?")
mkdir "$TMP/bin"
cp "$FLOATMOUNT" "$TMP/bin/floatmount" || die "cannot copy $FLOATMOUNT"
cp "$FAULT_PROXY" "$TMP/bin/fault_proxy" || die "cannot copy $FAULT_PROXY"
FLOATMOUNT=$TMP/bin/floatmount
FAULT_PROXY=$TMP/bin/fault_proxy
"$FLOATMOUNT" --version >/dev/null 2>&1 || die "$FM_SOURCE does not run (being rebuilt?)"

# --- ganesha -------------------------------------------------------------------
pick_port() {
  local port i
  for ((i = 0; i < 50; i++)); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ! command -v ss >/dev/null || ! ss -Htln "sport = :$port" 2>/dev/null | grep -q .; then
      echo "$port"
      return 0
    fi
  done
  return 1
}

tcp_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_ganesha() {
  local attempt i port
  for ((attempt = 1; attempt <= 8; attempt++)); do
    port=$(pick_port) || die "no free loopback port"
    cat >"$TMP/ganesha.conf" <<EOF
NFS_CORE_PARAM { Protocols = 4; NFS_Port = $port; Bind_addr = 127.0.0.1; Enable_NLM = false; Enable_RQUOTA = false; Enable_UDP = false; }
NFSV4 { Graceless = true; Minor_Versions = 0, 1, 2; Only_Numeric_Owners = true; RecoveryBackend = fs; RecoveryRoot = $TMP/recovery; }
EXPORT { Export_Id = 1; Path = $EXPORT_DIR; Pseudo = /export; Access_Type = RW; Squash = No_Root_Squash; Protocols = 4; Transports = TCP; SecType = sys; FSAL { Name = VFS; } }
EOF
    : >"$TMP/ganesha.log"
    "$GANESHA" -F -f "$TMP/ganesha.conf" -L "$TMP/ganesha.log" -p "$TMP/ganesha.pid" \
      </dev/null >>"$TMP/ganesha.out" 2>&1 &
    GANESHA_PID=$!
    for ((i = 0; i < 300; i++)); do
      if ! kill -0 "$GANESHA_PID" 2>/dev/null; then
        wait "$GANESHA_PID" 2>/dev/null || true
        GANESHA_PID=""
        grep -q "Address already in use" "$TMP/ganesha.log" && continue 2
        tail -n 20 "$TMP/ganesha.log" "$TMP/ganesha.out" >&2 || true
        die "ganesha.nfsd exited during startup (log above)"
      fi
      if grep -q "NFS SERVER INITIALIZED" "$TMP/ganesha.log" && tcp_ready "$port"; then
        if grep -q "Config File (" "$TMP/ganesha.log"; then
          grep "Config File (" "$TMP/ganesha.log" >&2
          die "ganesha.nfsd rejected part of its config (above)"
        fi
        GANESHA_PORT=$port
        return 0
      fi
      sleep 0.1
    done
    tail -n 20 "$TMP/ganesha.log" >&2 || true
    die "ganesha.nfsd did not come up on 127.0.0.1:$port within 30 s"
  done
  die "ganesha.nfsd could not bind a free port in 8 attempts"
}

declare -A PROXY_PORT=() PROXY_PID=()
start_proxy() {  # latency_us
  local lat=$1 out=$TMP/proxy-$1.out i port=""
  "$FAULT_PROXY" --listen 127.0.0.1:0 --target "127.0.0.1:$GANESHA_PORT" --latency-us "$lat" \
    >"$out" 2>"$TMP/proxy-$lat.err" &
  PROXY_PIDS+=("$!")
  PROXY_PID[$lat]=$!
  for ((i = 0; i < 100; i++)); do
    [[ -d $TMP ]] || die "$TMP vanished (removed by another process?)"
    port=$(sed -n 's/^port=\([0-9][0-9]*\)$/\1/p' "$out" 2>/dev/null || true)
    [[ -n $port ]] && break
    kill -0 "${PROXY_PID[$lat]}" 2>/dev/null || break
    sleep 0.1
  done
  [[ -n $port ]] || die "fault_proxy (latency $lat us) did not start: $(cat "$TMP/proxy-$lat.err")"
  PROXY_PORT[$lat]=$port
}

# --- accounting helpers ----------------------------------------------------------

# CPU ticks (user+system) of a live process, 0 if it is gone.

# CPU ms of this shell's reaped children (user+system), from the `times`
# builtin written to a file: a command substitution would run in a subshell
# with its own (empty) child accounting.
CHILD_MS=0

lat_label() {
  case $1 in
    direct) echo "none (direct)" ;;
    *) echo "proxy +$1 us" ;;
  esac
}

# Busy ticks (all CPUs, everything but idle and iowait) from /proc/stat.

# --- single runs -------------------------------------------------------------------
# Each run_* sets RUN_OK (1/0), RUN_MSG, RUN_BYTES (moved in total) and
# RUN_SELF (floatmount's own MiB/s or "-"). measure() wraps it with the wall
# clock and CPU accounting.
RUN_OK=0 RUN_MSG="" RUN_BYTES=0 RUN_SELF="-"
NFSCP_OUT=$TMP/nfscp-out
WRITE_NAME=bench-write.bin

nfs_url_cp() { echo "nfs://127.0.0.1/export/test.bin?version=4&nfsport=$1"; }
fm_url() { echo "nfs://127.0.0.1:$1/export/$2"; }

file_size() { stat -c %s "$1" 2>/dev/null || echo -1; }

run_nfscp() {  # port, processes
  local port=$1 n=$2 i rc=0 url
  local -a pids=()
  url=$(nfs_url_cp "$port")
  for ((i = 0; i < n; i++)); do rm -f "$NFSCP_OUT.$i"; done
  children_ms
  RUN_CPU0=$CHILD_MS
  RUN_T0=$(now_us)
  for ((i = 0; i < n; i++)); do
    timeout "$RUN_TIMEOUT" "$NFS_CP" "$url" "$NFSCP_OUT.$i" >"$TMP/run.$i.log" 2>&1 &
    pids+=("$!")
  done
  BG_PIDS=("${pids[@]}")
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || rc=$?
  done
  RUN_T1=$(now_us)
  children_ms
  RUN_CPU1=$CHILD_MS
  BG_PIDS=()
  RUN_OK=1 RUN_MSG="" RUN_BYTES=$((n * SIZE_BYTES)) RUN_SELF="-"
  for ((i = 0; i < n; i++)); do
    if [[ $(file_size "$NFSCP_OUT.$i") != "$SIZE_BYTES" ]]; then
      RUN_OK=0
      RUN_MSG="nfs-cp #$i: exit $rc, $(file_size "$NFSCP_OUT.$i") bytes: $(tail -c 300 "$TMP/run.$i.log" | tr '\n' ' ')"
    fi
    rm -f "$NFSCP_OUT.$i"
  done
}

run_floatmount() {  # port, nconnect, direction
  local port=$1 nc=$2 dir=$3 rc=0 src dst
  if [[ $dir == read ]]; then
    src=$(fm_url "$port" test.bin) dst=/dev/null
  else
    src=$TMP/write-src.bin dst=$(fm_url "$port" "$WRITE_NAME")
  fi
  children_ms
  RUN_CPU0=$CHILD_MS
  RUN_T0=$(now_us)
  timeout "$RUN_TIMEOUT" "$FLOATMOUNT" cp --nconnect "$nc" "${FM_EXTRA[@]}" "$src" "$dst" \
    >"$TMP/run.0.log" 2>&1 || rc=$?
  RUN_T1=$(now_us)
  children_ms
  RUN_CPU1=$CHILD_MS
  RUN_OK=1 RUN_MSG="" RUN_BYTES=$SIZE_BYTES RUN_SELF="-"
  local line
  line=$(grep -m1 '^copied ' "$TMP/run.0.log" || true)
  if ((rc != 0)) || [[ $line != "copied $SIZE_BYTES bytes "* ]]; then
    RUN_OK=0
    RUN_MSG="floatmount cp exit $rc: $(tail -c 300 "$TMP/run.0.log" | tr '\n' ' ')"
    return
  fi
  [[ $line =~ :\ ([0-9.]+)\ MiB/s ]] && RUN_SELF=${BASH_REMATCH[1]}
}

run_tcp_ceiling() {
  local rc=0 port="" i rpid
  # Receiver: perl reads 1 MiB at a time and discards; sender: dd into bash's
  # /dev/tcp. One stream, no NFS, no proxy: the loopback's copy cost.
  perl -MIO::Socket::INET -e '
    my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1,
                                  ReuseAddr => 1) or die "listen: $!\n";
    $| = 1; print "port=", $s->sockport, "\n";
    my $c = $s->accept or die "accept: $!\n";
    my ($t, $n, $buf) = (0, 0, "");
    $t += $n while ($n = sysread($c, $buf, 1 << 20));
    print "bytes=$t\n";' >"$TMP/tcp.out" 2>&1 &
  rpid=$!
  BG_PIDS=("$rpid")
  for ((i = 0; i < 100; i++)); do
    port=$(sed -n 's/^port=\([0-9][0-9]*\)$/\1/p' "$TMP/tcp.out" 2>/dev/null || true)
    [[ -n $port ]] && break
    sleep 0.05
  done
  children_ms
  RUN_CPU0=$CHILD_MS
  RUN_T0=$(now_us)
  if [[ -n $port ]]; then
    timeout "$RUN_TIMEOUT" dd if=/dev/zero bs=1M count="$SIZE_MIB" status=none \
      >"/dev/tcp/127.0.0.1/$port" || rc=$?
  else
    rc=99
  fi
  wait "$rpid" || rc=$?
  RUN_T1=$(now_us)
  children_ms
  RUN_CPU1=$CHILD_MS
  BG_PIDS=()
  RUN_OK=1 RUN_MSG="" RUN_BYTES=$SIZE_BYTES RUN_SELF="-"
  if ((rc != 0)) || ! grep -qx "bytes=$SIZE_BYTES" "$TMP/tcp.out"; then
    RUN_OK=0 RUN_MSG="loopback dd|perl: exit $rc: $(tr '\n' ' ' <"$TMP/tcp.out")"
  fi
}

run_local() {  # read|write
  local rc=0
  children_ms
  RUN_CPU0=$CHILD_MS
  RUN_T0=$(now_us)
  if [[ $1 == read ]]; then
    dd if="$EXPORT_DIR/test.bin" of=/dev/null bs=1M status=none || rc=$?
  else
    rm -f "$TMP/local-write.bin"
    dd if="$TMP/write-src.bin" of="$TMP/local-write.bin" bs=1M conv=fsync status=none || rc=$?
  fi
  RUN_T1=$(now_us)
  children_ms
  RUN_CPU1=$CHILD_MS
  rm -f "$TMP/local-write.bin"
  RUN_OK=$((rc == 0)) RUN_MSG="dd exit $rc" RUN_BYTES=$SIZE_BYTES RUN_SELF="-"
}

# --- measurement series -------------------------------------------------------------
ROWS=0
declare -a R_KIND R_TOOL R_DIR R_NC R_LAT R_MIBS R_RUNS R_CCPU R_SCPU R_PCPU R_OCPU R_SELF R_STATUS
FAILURES=()
STEP=0
TOTAL_STEPS=0

median2() {  # like median, 2 decimals
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.2f\n", m }'
}

# measure TOOL DIRECTION NCONNECT LATENCY(direct|us) REPEATS COMMAND...
# (rows measured with MEASURE_KIND=ceiling get no ratio)
MEASURE_KIND=client
measure() {
  local tool=$1 dir=$2 nc=$3 lat=$4 reps=$5
  shift 5
  local -a mibs=() ccpu=() scpu=() pcpu=() ocpu=() selfs=()
  local r g0 g1 p0 p1 m0 m1 ppid="" wall status=ok
  if [[ $lat != direct ]]; then ppid=${PROXY_PID[$lat]}; fi
  for ((r = 1; r <= reps; r++)); do
    STEP=$((STEP + 1))
    [[ -f $EXPORT_DIR/test.bin ]] || die "$EXPORT_DIR/test.bin vanished (removed by another process?)"
    m0=$(machine_busy_ticks)
    g0=$(pid_ticks "$GANESHA_PID")
    p0=0
    if [[ -n $ppid ]]; then p0=$(pid_ticks "$ppid"); fi
    "$@"
    g1=$(pid_ticks "$GANESHA_PID")
    m1=$(machine_busy_ticks)
    p1=0
    if [[ -n $ppid ]]; then p1=$(pid_ticks "$ppid"); fi
    wall=$((RUN_T1 - RUN_T0))
    ((wall > 0)) || wall=1
    if ((RUN_OK != 1)); then
      status=FAIL
      FAILURES+=("$tool $dir nconnect=$nc latency=$lat run $r: $RUN_MSG")
      note "[$STEP/$TOTAL_STEPS] $tool $dir nc=$nc $(lat_label "$lat") run $r/$reps: FAILED: $RUN_MSG"
      continue
    fi
    # "other": CPU the machine spent on anything but this run's client,
    # server and proxy (another job on the box makes the figures unreliable).
    local v c s p o
    read -r v c s p o < <(awk -v b="$RUN_BYTES" -v w="$wall" -v cc="$((RUN_CPU1 - RUN_CPU0))" \
      -v g="$((g1 - g0))" -v pp="$((p1 - p0))" -v m="$((m1 - m0))" -v hz="$CLK_TCK" \
      -v ncpu="$NPROC" 'BEGIN {
        sec = w / 1e6
        c = cc / 1000 / sec; s = g / hz / sec; p = pp / hz / sec
        o = m / hz / sec - c - s - p
        if (o > ncpu - c - s - p) o = ncpu - c - s - p  # tick granularity on short runs
        if (o < 0) o = 0
        printf "%.1f %.2f %.2f %.2f %.2f\n", b / 1048576 / sec, c, s, p, o }')
    mibs+=("$v") ccpu+=("$c") scpu+=("$s") pcpu+=("$p") ocpu+=("$o")
    if [[ $RUN_SELF != - ]]; then selfs+=("$RUN_SELF"); fi
    local self_note=""
    if [[ $RUN_SELF != - ]]; then self_note=" (self-timed $RUN_SELF)"; fi
    note "[$STEP/$TOTAL_STEPS] $tool $dir nc=$nc $(lat_label "$lat") run $r/$reps:" \
      "$v MiB/s$self_note; cores: client $c server $s${ppid:+ proxy $p} other $o"
  done
  R_KIND[ROWS]=$MEASURE_KIND R_TOOL[ROWS]=$tool R_DIR[ROWS]=$dir R_NC[ROWS]=$nc R_LAT[ROWS]=$lat
  if ((${#mibs[@]} == 0)); then
    R_MIBS[ROWS]=- R_RUNS[ROWS]=- R_CCPU[ROWS]=- R_SCPU[ROWS]=- R_PCPU[ROWS]=- R_OCPU[ROWS]=-
    R_SELF[ROWS]=-
  else
    R_MIBS[ROWS]=$(median "${mibs[@]}")
    R_RUNS[ROWS]="${mibs[*]}"
    R_CCPU[ROWS]=$(median2 "${ccpu[@]}")
    R_SCPU[ROWS]=$(median2 "${scpu[@]}")
    R_OCPU[ROWS]=$(median2 "${ocpu[@]}")
    if [[ -n $ppid ]]; then R_PCPU[ROWS]=$(median2 "${pcpu[@]}"); else R_PCPU[ROWS]=-; fi
    if ((${#selfs[@]})); then R_SELF[ROWS]=$(median "${selfs[@]}"); else R_SELF[ROWS]=-; fi
  fi
  R_STATUS[ROWS]=$status
  ROWS=$((ROWS + 1))
}

# Touches (writes and frees) tmpfs memory so the runs that allocate pages
# (nfs-cp's output file, the server side of WRITEs) do not pay first-touch
# faults: in a VM whose balloon reports free pages, memory the guest never
# touched, or touched long ago, costs a host fault per page on first use.
prefault() {  # MiB
  [[ $PREFAULT == 1 && $TMP_FS == tmpfs ]] || return 0
  dd if=/dev/zero of="$TMP/prefault" bs=1M count="$1" status=none
  rm -f "$TMP/prefault"
}

# --- run -----------------------------------------------------------------------------
DATE_HUMAN=$(date '+%Y-%m-%d %H:%M:%S %z')
DATE_FILE=$(date '+%Y%m%d-%H%M%S')
CPU_MODEL=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
[[ -n $CPU_MODEL ]] || CPU_MODEL=unknown
MEM_MIB=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 }' /proc/meminfo)
FM_VERSION=$("$FLOATMOUNT" --version 2>&1 | head -n 1 || true)
GIT_REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo "?")
if [[ $GIT_REV != "?" ]] && ! git -C "$REPO" diff --quiet HEAD -- 2>/dev/null; then
  GIT_REV="$GIT_REV+dirty"
fi

n_nc=${#NCONNECTS[@]}
TOTAL_STEPS=$(((CEILINGS == 1 ? 2 + HAVE_PERL : 0) * REPEAT + (2 + 2 * n_nc) * REPEAT +
  2 * (1 + 2 * n_nc) * PROXY_REPEAT))

note "temp dir $TMP ($TMP_FS); test file $SIZE_MIB MiB"
start_ganesha
note "ganesha.nfsd pid $GANESHA_PID on 127.0.0.1:$GANESHA_PORT"
start_proxy 0
start_proxy "$LATENCY_US"
note "fault_proxy +0 us on port ${PROXY_PORT[0]}, +$LATENCY_US us on port ${PROXY_PORT[$LATENCY_US]}"

# Other load on the machine skews everything: measure it (1 s samples) and
# optionally wait for it to go away.
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

dd if=/dev/urandom of="$EXPORT_DIR/test.bin" bs=1M count="$SIZE_MIB" iflag=fullblock status=none
cp "$EXPORT_DIR/test.bin" "$TMP/write-src.bin"
cat "$EXPORT_DIR/test.bin" "$TMP/write-src.bin" >/dev/null  # warm the page cache
note "test file ready; touching $((SIZE_MIB * (PARALLEL + 1))) MiB of memory"
prefault $((SIZE_MIB * (PARALLEL + 1)))

# Unmeasured warm-up: creates the write destination (later runs overwrite it:
# OPEN truncates, and ganesha keeps deleted files open, so the name is reused
# rather than removed) and checks that the engine's copy is byte-exact.
"$FLOATMOUNT" cp --nconnect 4 "${FM_EXTRA[@]}" "$TMP/write-src.bin" \
  "$(fm_url "$GANESHA_PORT" "$WRITE_NAME")" >"$TMP/warmup.log" 2>&1 ||
  die "warm-up write failed: $(cat "$TMP/warmup.log")"
cmp -s "$TMP/write-src.bin" "$EXPORT_DIR/$WRITE_NAME" ||
  die "warm-up write: the file on the server differs from the source"
"$FLOATMOUNT" cp --nconnect 4 "${FM_EXTRA[@]}" "$(fm_url "$GANESHA_PORT" test.bin)" /dev/null \
  >"$TMP/warmup.log" 2>&1 || die "warm-up read failed: $(cat "$TMP/warmup.log")"

if ((CEILINGS == 1)); then
  MEASURE_KIND=ceiling
  if ((HAVE_PERL)); then
    measure "tcp dd->perl" loopback 1 direct "$REPEAT" run_tcp_ceiling
  else
    note "perl's IO::Socket::INET is missing: no loopback TCP ceiling row"
  fi
  measure "local dd" read - direct "$REPEAT" run_local read
  measure "local dd" write - direct "$REPEAT" run_local write
  MEASURE_KIND=client
fi

measure nfs-cp read 1 direct "$REPEAT" run_nfscp "$GANESHA_PORT" 1
measure "nfs-cp x$PARALLEL" read 1 direct "$REPEAT" run_nfscp "$GANESHA_PORT" "$PARALLEL"
for nc in "${NCONNECTS[@]}"; do
  measure floatmount read "$nc" direct "$REPEAT" run_floatmount "$GANESHA_PORT" "$nc" read
done
for nc in "${NCONNECTS[@]}"; do
  measure floatmount write "$nc" direct "$REPEAT" run_floatmount "$GANESHA_PORT" "$nc" write
done

for lat in 0 "$LATENCY_US"; do
  port=${PROXY_PORT[$lat]}
  measure nfs-cp read 1 "$lat" "$PROXY_REPEAT" run_nfscp "$port" 1
  for nc in "${NCONNECTS[@]}"; do
    measure floatmount read "$nc" "$lat" "$PROXY_REPEAT" run_floatmount "$port" "$nc" read
  done
  for nc in "${NCONNECTS[@]}"; do
    measure floatmount write "$nc" "$lat" "$PROXY_REPEAT" run_floatmount "$port" "$nc" write
  done
done

# --- report --------------------------------------------------------------------------
find_row() {  # tool dir nc lat -> index or -1
  local i
  for ((i = 0; i < ROWS; i++)); do
    if [[ ${R_TOOL[i]} == "$1" && ${R_DIR[i]} == "$2" && ${R_NC[i]} == "$3" && ${R_LAT[i]} == "$4" ]]; then
      echo "$i"
      return
    fi
  done
  echo -1
}
REF_READ=$(find_row nfs-cp read 1 direct)
REF_WRITE=$(find_row floatmount write "${NCONNECTS[0]}" direct)

HEADERS=(tool direction nconnect "added latency" "MiB/s" "ratio to ref" "drop 0->${LATENCY_US}us"
  "self-timed" "client cores" "server cores" "proxy cores" "other cores" "runs (MiB/s)")
CSV_HEADER="tool,direction,nconnect,path,added_latency_us,mib_s,ratio_to_ref,drop_pct_0_to_${LATENCY_US}us,client_cores,server_cores,proxy_cores,other_cores,floatmount_self_timed_mib_s,runs_mib_s,status"
declare -a CELLS=()
CSV_LINES=()
for ((i = 0; i < ROWS; i++)); do
  ref=-1
  if [[ ${R_KIND[i]} == client ]]; then
    case ${R_DIR[i]} in
      read) ref=$REF_READ ;;
      write) ref=$REF_WRITE ;;
    esac
  fi
  ratio=-
  if ((ref >= 0)) && [[ ${R_MIBS[i]} != - && ${R_MIBS[ref]} != - ]]; then
    ratio=$(awk -v a="${R_MIBS[i]}" -v b="${R_MIBS[ref]}" 'BEGIN { printf "%.2f", a / b }')
    ((ref == i)) && ratio="1.00 (ref)"
  fi
  drop=-
  if [[ ${R_LAT[i]} == "$LATENCY_US" && $LATENCY_US != 0 ]]; then
    z=$(find_row "${R_TOOL[i]}" "${R_DIR[i]}" "${R_NC[i]}" 0)
    if ((z >= 0)) && [[ ${R_MIBS[i]} != - && ${R_MIBS[z]} != - ]]; then
      drop=$(awk -v a="${R_MIBS[i]}" -v b="${R_MIBS[z]}" 'BEGIN { printf "%.1f%%", (1 - a / b) * 100 }')
    fi
  fi
  cell_mibs=${R_MIBS[i]}
  [[ ${R_STATUS[i]} == ok ]] || cell_mibs="$cell_mibs (FAIL)"
  CELLS+=("${R_TOOL[i]}" "${R_DIR[i]}" "${R_NC[i]}" "$(lat_label "${R_LAT[i]}")" "$cell_mibs" "$ratio"
    "$drop" "${R_SELF[i]}" "${R_CCPU[i]}" "${R_SCPU[i]}" "${R_PCPU[i]}"
    "${R_OCPU[i]}" "${R_RUNS[i]}")
  if [[ ${R_LAT[i]} == direct ]]; then path=direct lat_us=""; else path=proxy lat_us=${R_LAT[i]}; fi
  CSV_LINES+=("\"${R_TOOL[i]}\",${R_DIR[i]},${R_NC[i]},$path,$lat_us,${R_MIBS[i]},${ratio% (ref)},${drop%\%},${R_CCPU[i]},${R_SCPU[i]},${R_PCPU[i]},${R_OCPU[i]},${R_SELF[i]},${R_RUNS[i]// /;},${R_STATUS[i]}")
done

NUM_FIRST=4 NUM_LAST=11  # the numeric columns
table_widths

report() {
  echo "floatmount engine benchmark  $DATE_HUMAN"
  echo "machine: $NPROC CPUs, $CPU_MODEL, ${MEM_MIB} MiB RAM, kernel $(uname -sr)"
  echo "floatmount: ${FM_VERSION:-?} (git $GIT_REV; $FM_SOURCE built $FM_BUILT);" \
    "nfs-ganesha $(pkg_version nfs-ganesha); libnfs-utils $(pkg_version libnfs-utils)"
  echo "test file: $SIZE_MIB MiB on $TMP_FS ($TMP_PARENT); repeats: $REPEAT direct," \
    "$PROXY_REPEAT via proxy (medians shown)"
  echo "MiB/s = bytes / wall time of the whole command (connect to exit); self-timed = what" \
    "floatmount cp itself prints (open to commit/close)"
  echo "reference: reads = nfs-cp (1 process, direct); writes = floatmount nconnect=${NCONNECTS[0]} direct"
  # Ceiling rows are left out: their "other" is mostly kernel work dd causes.
  local other_max=0.00 k
  for ((k = 0; k < ROWS; k++)); do
    if [[ ${R_KIND[k]} == client && ${R_OCPU[k]} != - ]]; then
      other_max=$(awk -v a="$other_max" -v b="${R_OCPU[k]}" 'BEGIN { printf "%.2f", (b > a) ? b : a }')
    fi
  done
  echo "other load: $PRE_OTHER cores busy just before the runs (load average $PRE_LOADAVG);" \
    "up to $other_max cores (per-row median, client rows) during them"
  if awk -v a="$PRE_OTHER" -v b="$other_max" 'BEGIN { exit !(a >= 0.2 || b >= 0.2) }'; then
    echo "WARNING: other processes used the CPUs during this run; on a 2-core box the figures" \
      "are then not comparable with a quiet run (see the 'other cores' column)"
  fi
  echo
  print_cells "${HEADERS[@]}"
  local total=0 c
  for ((c = 0; c < NCOL; c++)); do total=$((total + WIDTH[c] + 2)); done
  printf '%*s\n' "$((total - 2))" '' | tr ' ' '-'
  local k
  for ((k = 0; k < ${#CELLS[@]}; k += NCOL)); do
    print_cells "${CELLS[@]:k:NCOL}"
  done
}

mkdir -p "$OUT_DIR"
CSV_FILE=$OUT_DIR/engine-$DATE_FILE.csv
{
  echo "$CSV_HEADER"
  printf '%s\n' "${CSV_LINES[@]}"
} >"$CSV_FILE"
echo
report | tee "$OUT_DIR/engine-$DATE_FILE.txt"
echo
echo "CSV: $CSV_FILE"

if ((${#FAILURES[@]})); then
  echo
  echo "engine_bench: ${#FAILURES[@]} run(s) failed:"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
exit 0
