# Shell functions shared by the benchmark scripts in this directory:
# numbers, processes, CPU accounting, the test servers and mounts. Sourced,
# not run.
# CLK_TCK must be set by the caller (getconf CLK_TCK) before the CPU ones
# are used.
# shellcheck shell=bash

is_uint() { [[ $1 =~ ^[0-9]+$ ]]; }

avail_kib() { df -Pk "$1" 2>/dev/null | awk 'NR == 2 { print $4 }'; }

stop_pid() {  # pid, seconds before SIGKILL
  local pid=$1 grace=$2 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  return 0
}

now_us() { local t=${EPOCHREALTIME/./}; echo "$((10#$t))"; }

pid_ticks() {  # CPU ticks (user+system, all threads) of a live process, 0 if gone
  local stat="" rest
  [[ -n $1 ]] || { echo 0; return; }
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || true
  if [[ -z $stat ]]; then echo 0; return; fi
  rest=${stat##*) }
  local -a f
  read -r -a f <<<"$rest"
  echo $((f[11] + f[12]))
}

to_ms() {
  [[ $1 =~ ^([0-9]+)m([0-9]+)[.,]([0-9]+)s$ ]] || { echo 0; return; }
  local frac=${BASH_REMATCH[3]}000
  echo $((10#${BASH_REMATCH[1]} * 60000 + 10#${BASH_REMATCH[2]} * 1000 + 10#${frac:0:3}))
}

# Sets CHILD_MS (read by the caller) to the CPU ms of this shell's reaped
# children (fio, python, cp). Needs $TMP.
# shellcheck disable=SC2034
children_ms() {
  local _u _s cu cs
  times >"$TMP/times"
  { read -r _u _s; read -r cu cs; } <"$TMP/times"
  CHILD_MS=$(($(to_ms "$cu") + $(to_ms "$cs")))
}

machine_busy_ticks() {
  local _cpu user nice system _idle _iowait irq softirq steal _rest
  read -r _cpu user nice system _idle _iowait irq softirq steal _rest </proc/stat
  echo $((user + nice + system + irq + softirq + steal))
}

median() {  # numbers... -> median with 1 decimal ("-" for none)
  (($#)) || { echo -; return; }
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.1f\n", m }'
}

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }

idle_other_cores() {
  local m0 m1
  m0=$(machine_busy_ticks)
  sleep 1
  m1=$(machine_busy_ticks)
  awk -v m="$((m1 - m0))" -v hz="$CLK_TCK" 'BEGIN { printf "%.2f\n", m / hz }'
}

# A text table: HEADERS (column names) and CELLS (row-major) give NCOL and
# each column's WIDTH; print_cells prints one row, columns NUM_FIRST to
# NUM_LAST (the caller sets them) right-aligned.
# shellcheck disable=SC2034
table_widths() {
  local c k
  NCOL=${#HEADERS[@]}
  WIDTH=()
  for ((c = 0; c < NCOL; c++)); do WIDTH[c]=${#HEADERS[c]}; done
  for ((k = 0; k < ${#CELLS[@]}; k++)); do
    c=$((k % NCOL))
    if ((${#CELLS[k]} > WIDTH[c])); then WIDTH[c]=${#CELLS[k]}; fi
  done
}

print_cells() {  # cells...
  local c line="" cell
  for ((c = 0; c < NCOL; c++)); do
    cell=$1
    shift
    if ((c >= NUM_FIRST && c <= NUM_LAST)); then
      printf -v cell '%*s' "${WIDTH[c]}" "$cell"
    else
      printf -v cell '%-*s' "${WIDTH[c]}" "$cell"
    fi
    line+="$cell  "
  done
  echo "${line%"${line##*[! ]}"}"
}

# The value of KEY in a file of KEY=VALUE lines ("" if absent).
read_kv() { sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1; }  # file key

is_mounted() { awk -v m="$1" '$5 == m { f = 1 } END { exit !f }' /proc/self/mountinfo; }

# At the end of a benchmark: `floatmount unmount` (it commits and stops the
# agent), or a lazy unmount if that fails or takes over 2 minutes.
unmount_floatmount() {  # floatmount-binary mountpoint
  is_mounted "$2" || return 0
  timeout 120 "$1" unmount "$2" >/dev/null 2>&1 || umount -l "$2"
}

# A private nfs-ganesha for the mount benchmarks: DIR/bin/ganesha_serve,
# its output in DIR. Sets SERVE_PID, PORT, EXPORT_DIR and PSEUDO; returns 1
# with the reason on stderr if it does not come up.
start_ganesha() {  # dir
  local dir=$1 i
  "$dir/bin/ganesha_serve" >"$dir/serve.out" 2>"$dir/serve.err" </dev/null &
  SERVE_PID=$!
  for ((i = 0; i < 600; i++)); do
    PORT=$(read_kv "$dir/serve.out" port)
    EXPORT_DIR=$(read_kv "$dir/serve.out" export_dir)
    PSEUDO=$(read_kv "$dir/serve.out" pseudo)
    [[ -n $PSEUDO && -d $EXPORT_DIR && -n $PORT ]] && return 0
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "ganesha_serve did not come up: $(tail -n 5 "$dir/serve.err")" >&2
  return 1
}

# DIR/bin/fault_proxy in front of 127.0.0.1:TARGET_PORT, adding LATENCY_US
# per round trip. Sets PROXY_PID and PROXY_PORT; returns 1 if it does not start.
start_proxy() {  # dir target_port latency_us
  local dir=$1 i
  "$dir/bin/fault_proxy" --listen 127.0.0.1:0 --target "127.0.0.1:$2" --latency-us "$3" \
    >"$dir/proxy.out" 2>"$dir/proxy.err" &
  PROXY_PID=$!
  for ((i = 0; i < 100; i++)); do
    PROXY_PORT=$(read_kv "$dir/proxy.out" port)
    [[ -n $PROXY_PORT ]] && return 0
    sleep 0.1
  done
  echo "fault_proxy did not start: $(cat "$dir/proxy.err")" >&2
  return 1
}
