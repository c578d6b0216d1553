#!/bin/sh
# The README's main command: install, build, and generate from the demo model
# that the build makes. Extra arguments go to `bitnet-vk generate`.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
build/bitnet-vk info -m build/models/demo-i2s.gguf
exec build/bitnet-vk generate -m build/models/demo-i2s.gguf -p "The capital of France is" -n 32 --seed 1 "$@"
