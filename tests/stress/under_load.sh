#!/usr/bin/env bash
# Runs chosen tests again and again while stress-ng keeps every core busy,
# to find tests that pass only on an idle machine (issue 19):
#
#   tests/stress/under_load.sh [-n RUNS] [-b BUILD_DIR] CTEST_REGEX
#
# e.g. tests/stress/under_load.sh -n 10 'CacheTest.Cutting|ResolverLoopTest'
#
# Each run is one `ctest -R CTEST_REGEX` (serially: the integration tests
# share loopback servers) under `stress-ng --cpu N --io 1` (N = cores), so the tests get
# a share of the CPU, as on a CI machine that other work loads. Prints one
# line per run and "N passed, M failed" at the end; exits 1 if any run
# failed, and keeps each failed run's ctest output in
# BUILD_DIR/under-load-RUN.log. Installs stress-ng (root) if missing.
set -euo pipefail

runs=10
build=build
while getopts "n:b:" opt; do
  case $opt in
    n) runs=$OPTARG ;;
    b) build=$OPTARG ;;
    *) echo "usage: $0 [-n RUNS] [-b BUILD_DIR] CTEST_REGEX" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -eq 1 ]] || { echo "usage: $0 [-n RUNS] [-b BUILD_DIR] CTEST_REGEX" >&2; exit 2; }
regex=$1
[[ -d $build ]] || { echo "under_load.sh: no build directory $build (build first)" >&2; exit 2; }
if ! command -v stress-ng >/dev/null; then
  [[ $(id -u) -eq 0 ]] || { echo "under_load.sh: install stress-ng (apt-get install stress-ng)" >&2; exit 2; }
  apt-get install -y -qq stress-ng >/dev/null
fi

stress_pid=
stop_stress() { [[ -n $stress_pid ]] && kill "$stress_pid" 2>/dev/null && wait "$stress_pid" 2>/dev/null; stress_pid=; }
trap stop_stress EXIT

passed=0 failed=0
for ((i = 1; i <= runs; i++)); do
  stress-ng --cpu "$(nproc)" --io 1 --timeout 3600s --quiet &
  stress_pid=$!
  start=$(date +%s)
  log="$build/under-load-$i.log"
  if ctest --test-dir "$build" -R "$regex" --output-on-failure >"$log" 2>&1; then
    passed=$((passed + 1))
    result=passed
    rm -f "$log"
  else
    failed=$((failed + 1))
    result="FAILED (see $log)"
  fi
  stop_stress
  summary=$(grep -E "tests passed|tests failed" "$log" 2>/dev/null || true)
  echo "run $i: $result in $(( $(date +%s) - start )) s ${summary}"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
