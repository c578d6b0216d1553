#!/bin/sh
# The README's test command: install, build, run the whole suite twice:
#   1. Release builds with clang and gcc, warnings as errors: the suite (the
#      large 2B4T-shaped test once, with gcc);
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build (gcc), every test
#      but the large 2B4T-shaped one (too slow under ASan);
#   3. the gpu-labelled tests (Vulkan, on Mesa lavapipe without a GPU) again
#      with the Khronos validation layer: any validation error fails;
#   4. a build without the Vulkan backend: the --device contract still holds;
#   5. the CPU suite again with the kernel dispatch forced down
#      (BITNET_CPU=avx2, then scalar): every path a binary can take on
#      another machine is tested on this one;
#   6. on x86-64: an aarch64 cross build whose kernel and engine tests run
#      under qemu-user, NEON with and without dotprod;
#   7. (after 2) the libFuzzer harnesses (clang), 60 s each under ASan+UBSan.
# The gpu-labelled tests run in stages 1 and 2 as well. Without a Vulkan
# device they skip, unless CI=true (then they fail).
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
# Vulkan drivers stay mapped until exit (tests/lsan_keep_drivers.c says why),
# so LeakSanitizer can tell their process-lifetime blocks from our leaks.
cc -shared -fPIC -O2 -o build-asan/lsan_keep_drivers.so tests/lsan_keep_drivers.c -ldl
(cd build-asan && LD_PRELOAD="$(pwd)/lsan_keep_drivers.so" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:verify_asan_link_order=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j"$jobs" -LE large)

echo "== clang, libFuzzer + ASan + UBSan: each fuzz harness for 60 s (tests/fuzz/run.sh)"
cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBN_FUZZ=ON -DBN_WERROR=ON \
      -DBUILD_TESTING=OFF -DBN_VULKAN=OFF -DBN_TESTDATA_DIR="$td" >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz_gguf_model fuzz_tokenizer fuzz_chat >/dev/null
BN_TESTDATA_DIR="$td" sh tests/fuzz/run.sh build-fuzz 60

echo "== gcc, Release, Vulkan validation layer: gpu-labelled tests, zero validation errors"
log=build/validation.log
if ! (cd build && BN_VK_VALIDATION=1 ctest -V -j"$jobs" -L gpu -LE large) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "gpu-labelled tests failed under validation (full log: $log)"
    exit 1
fi
if grep -E "vulkan validation: (error|.*not installed)" "$log"; then
    echo "validation errors (full log: $log)"
    exit 1
fi
grep -E "tests passed|Total Test time" "$log" || true

echo "== gcc, without the Vulkan backend: the --device contract"
cmake -S . -B build-novk -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release -DBN_WERROR=ON -DBN_VULKAN=OFF \
      -DBN_TESTDATA_DIR="$td" >/dev/null
cmake --build build-novk -j"$jobs" --target bitnet-vk test_cli_device >/dev/null
(cd build-novk && ctest --output-on-failure -R '^test_cli_device$')

echo "== gcc, Release, kernel dispatch forced to avx2, then scalar: the CPU suite"
for isa in avx2 scalar; do
    (cd build && BITNET_CPU=$isa ctest --output-on-failure -j"$jobs" -LE 'large|gpu')
done

if [ "$(uname -m)" = x86_64 ]; then
    echo "== aarch64 cross build (gcc), NEON kernels under qemu-user"
    qemu="$(command -v qemu-aarch64-static || command -v qemu-aarch64)"
    cmake -S . -B build-arm -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
          -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_BUILD_TYPE=Release -DBN_WERROR=ON -DBN_VULKAN=OFF \
          -DBN_TESTDATA_DIR="$td" "-DCMAKE_CROSSCOMPILING_EMULATOR=$qemu;-L;/usr/aarch64-linux-gnu" >/dev/null
    arm_tests="test_simd test_simd_backend test_threadpool test_kernels test_engine"
    # shellcheck disable=SC2086
    cmake --build build-arm -j"$jobs" --target $arm_tests >/dev/null
    arm_re="^($(echo $arm_tests | tr ' ' '|'))\$"
    (cd build-arm && ctest --output-on-failure -j"$jobs" -R "$arm_re")
    # test_simd and test_simd_backend reach every kernel set by name; the
    # engine test runs on the default one, so once more on plain NEON
    (cd build-arm && BITNET_CPU=neon ctest --output-on-failure -R '^test_engine$')
fi
