#!/bin/sh
# The README's main command: install, build, and generate from the trained
# model in models/. Extra arguments go to `bitnet-vk generate`.
set -eu
cd "$(dirname "$0")/.."
sh tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
# The shipped trained model (docs/model-card.md); speeds go to stderr.
build/bitnet-vk info -m models/fortunes-4m-i2_s.gguf
exec build/bitnet-vk generate -m models/fortunes-4m-i2_s.gguf -p "The secret of life is" -n 64 --seed 1 "$@"
