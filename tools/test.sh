#!/bin/sh
# The README's test command: install, build, run the whole suite twice:
#   1. Release builds with clang and gcc, warnings as errors: the suite (the
#      large 2B4T-shaped test once, with gcc);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build (gcc), every test
#      but the large 2B4T-shaped one (too slow under ASan).
# Shared test data is read from ../shared/testdata (BN_TESTDATA_DIR overrides).
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
jobs="$(nproc)"
td="${BN_TESTDATA_DIR:-$(pwd)/../shared/testdata}"

echo "== clang, Release, -Werror: suite without the large test"
cmake -S . -B build-clang -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release -DBN_WERROR=ON \
      -DBN_TESTDATA_DIR="$td" >/dev/null
cmake --build build-clang -j"$jobs" >/dev/null
(cd build-clang && ctest --output-on-failure -j"$jobs" -LE large)

echo "== gcc, Release, -Werror: full suite"
cmake -S . -B build -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DBN_WERROR=ON \
      -DBN_TESTDATA_DIR="$td" >/dev/null
cmake --build build -j"$jobs" >/dev/null
(cd build && ctest --output-on-failure -j"$jobs")

echo "== gcc, ASan + UBSan: suite without the large test"
cmake -S . -B build-asan -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Debug -DBN_SANITIZE=ON -DBN_WERROR=ON \
      -DBN_TESTDATA_DIR="$td" >/dev/null
cmake --build build-asan -j"$jobs" >/dev/null
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$jobs" -LE large)
