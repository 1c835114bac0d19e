#!/usr/bin/env bash
# test.sh - install what is missing, build twice (plain, and ASan+UBSan),
# run every test in both builds, print the summaries. Non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

scripts/deps.sh || exit 1

JOBS=${JOBS:-2}
build() { # DIR CMAKE_ARGS...
  local dir=$1; shift
  cmake -S "$ROOT" -B "$dir" "$@" >"$dir/configure.log" 2>&1 \
    || { cat "$dir/configure.log"; return 1; }
  cmake --build "$dir" -j"$JOBS" 2>&1 | grep -Ev '^\[ *[0-9]+%\]|^(Consolidate|Scanning|Built)' || true
  [ "${PIPESTATUS[0]}" -eq 0 ]
}

run_ctest() { # DIR LABEL
  local dir=$1 label=$2 rc
  echo "=== tests: $label ($dir) ==="
  (cd "$dir" && ctest -j"$JOBS" --output-on-failure --timeout 900)
  rc=$?
  echo "--- cmocka summaries ($label) ---"
  grep -hE '^\[  (PASSED|FAILED|SKIPPED)  \]|^\[==========\] .* ran' \
    "$dir/Testing/Temporary/LastTest.log" 2>/dev/null || true
  return $rc
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
mkdir -p build build-asan
build build -DCMAKE_BUILD_TYPE=RelWithDebInfo || { echo "test.sh: build failed" >&2; exit 1; }
build build-asan -DCMAKE_BUILD_TYPE=Debug -DPC_SANITIZE=ON \
  || { echo "test.sh: sanitizer build failed" >&2; exit 1; }

run_ctest build "release" || status=1
run_ctest build-asan "asan+ubsan" || status=1

if [ $status -ne 0 ]; then
  echo "test.sh: FAILED" >&2
else
  echo "test.sh: all tests passed in both builds"
fi
exit $status
