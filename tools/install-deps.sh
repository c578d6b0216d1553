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
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing:$missing" >&2
$SUDO apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
