#!/usr/bin/env bash
# Runs tests while every core is kept busy, as CI's machine may be when a
# session stops: the way to find tests whose bounds assume an idle machine.
#
#   tests/under_load.sh [--runs N] [--build DIR] [--stress] [CTEST ARGS...]
#
# e.g. tests/under_load.sh --runs 10 -L unit
#      tests/under_load.sh --runs 3 -R 'CacheTest|Torture'
#
# The load is one busy loop per core (nice 0, like the tests), started
# before and stopped after each run. --stress makes it heavier: stress-ng
# (Debian's stress-ng; installed here if missing) with a CPU worker per core
# and a worker doing writes and sync(2), which stalls the tests' own
# fsyncs and the ganesha server's disk as a busy CI machine does. Prints one line per run and exits
# non-zero if any run failed. FLOATMOUNT_TEST_TIME_SCALE is left as the
# caller set it (1 by default), so a bound too tight for a busy machine shows.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=10
build=build
stress=false
while (($#)); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --stress) stress=true; shift ;;
    *) break ;;
  esac
done
load_pids=()
stop_load() {
  ((${#load_pids[@]})) && kill "${load_pids[@]}" 2>/dev/null || true
  load_pids=()
}
trap stop_load EXIT
if $stress && ! command -v stress-ng >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq stress-ng >/dev/null
fi
start_load() {
  if $stress; then
    stress-ng --quiet --cpu "$(nproc)" --io 1 --hdd 1 --hdd-bytes 256M --temp-path /tmp &
    load_pids+=($!)
    return
  fi
  for ((c = 0; c < $(nproc); c++)); do
    (while :; do :; done) &
    load_pids+=($!)
  done
}
failed=0
for ((i = 1; i <= runs; i++)); do
  start_load
  log=$(mktemp /tmp/floatmount-under-load-XXXXXX.log)
  start=$(date +%s)
  if ctest --test-dir "$build" --output-on-failure "$@" >"$log" 2>&1; then
    echo "run $i/$runs: passed in $(($(date +%s) - start)) s"
    rm -f "$log"
  else
    failed=$((failed + 1))
    echo "run $i/$runs: FAILED in $(($(date +%s) - start)) s; log: $log"
    grep -E '^\s*[0-9]+ - |Failed|FAILED' "$log" | head -20 || true
  fi
  stop_load
done
echo "$((runs - failed)) passed, $failed failed"
((failed == 0))
