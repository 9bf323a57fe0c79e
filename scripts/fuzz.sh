#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer; needs the nightly toolchain):
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]
# Default: 600 seconds for each target in fuzz/fuzz_targets/. The corpus starts from real
# encodings (fuzz/src/write_seeds.rs) and grows under fuzz/corpus/ (not committed); a
# crash leaves its input under fuzz/artifacts/TARGET/ and stops the script. Turn each
# crash into a regression test (tests/tests/decoding.rs or beside the code).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
cargo +nightly run --quiet --bin write-seeds
for target in "${targets[@]}"; do
  echo "== $target: $seconds s"
  cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -print_final_stats=1 2>&1 |
    tee "/tmp/fuzz-$target.log" | grep -E "^(#[0-9]+ +(DONE|INITED)|stat::|==[0-9]+==|SUMMARY|Done)" || true
  if [ -n "$(ls -A "artifacts/$target" 2>/dev/null)" ]; then
    echo "$target found a crash: $(ls "artifacts/$target")" >&2
    exit 1
  fi
done
