#!/bin/sh
# Installs what bitnet-vk needs to build and test, from Debian/Ubuntu packages.
# Runs apt-get only when something is missing; uses sudo when not root.
set -eu
missing=""
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
command -v make >/dev/null 2>&1 || missing="$missing build-essential"
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v clang >/dev/null 2>&1 || missing="$missing clang"
[ -x /usr/bin/time ] || missing="$missing time"
# gcc's AddressSanitizer runtime (the sanitizer build of the test suite)
if command -v gcc >/dev/null 2>&1; then
    printf 'int main(void){return 0;}\n' > /tmp/bn-asan-probe.c
    gcc -fsanitize=address,undefined /tmp/bn-asan-probe.c -o /tmp/bn-asan-probe 2>/dev/null || missing="$missing libasan8 libubsan1"
    rm -f /tmp/bn-asan-probe /tmp/bn-asan-probe.c
fi
# libFuzzer (clang -fsanitize=fuzzer, the fuzz stage of tools/test.sh):
# Debian ships its runtime, libclang_rt.fuzzer, in libclang-rt-N-dev, which
# clang only recommends; prints that package when the probe cannot link.
fuzz_rt_missing() {
    command -v clang >/dev/null 2>&1 || return 0
    printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n){(void)d;(void)n;return 0;}\n' \
        > /tmp/bn-fuzz-probe.c
    if ! clang -fsanitize=fuzzer,address,undefined /tmp/bn-fuzz-probe.c -o /tmp/bn-fuzz-probe 2>/dev/null; then
        v="$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -n 1)"
        echo "libclang-rt-${v:-14}-dev"
    fi
    rm -f /tmp/bn-fuzz-probe /tmp/bn-fuzz-probe.c
}
missing="$missing $(fuzz_rt_missing)"
missing="$(echo $missing)"
# Vulkan backend: headers (the binary never links libvulkan; it dlopens it),
# the shader compiler and validator, Mesa's lavapipe (the CPU Vulkan device
# the gpu-labelled tests run on) and the Khronos validation layer.
first() { for f in "$@"; do [ -e "$f" ] && return 0; done; return 1; }
[ -f /usr/include/vulkan/vulkan_core.h ] || missing="$missing libvulkan-dev"
command -v glslc >/dev/null 2>&1 || missing="$missing glslc"
command -v spirv-val >/dev/null 2>&1 || missing="$missing spirv-tools"
first /usr/share/vulkan/icd.d/lvp_icd.*.json || missing="$missing mesa-vulkan-drivers"
first /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json || missing="$missing vulkan-validationlayers"
# NEON kernels: the aarch64 cross compiler and a user-mode emulator, so an
# x86-64 host builds and runs the ARM kernel tests (tools/test.sh).
if [ "$(uname -m)" = x86_64 ]; then
    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || missing="$missing gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    command -v qemu-aarch64-static >/dev/null 2>&1 || command -v qemu-aarch64 >/dev/null 2>&1 ||
        missing="$missing qemu-user-static"
fi
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
# clang was only now installed: its libFuzzer runtime may still be missing.
rt="$(fuzz_rt_missing)"
# shellcheck disable=SC2086
[ -z "$rt" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $rt
