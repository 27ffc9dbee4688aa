#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on a copy
# of its seed corpus. Fails if any target finds a crash, a leak or undefined behaviour.
#   tests/fuzz/run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
set -uo pipefail
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?BUILD_DIR}
seconds=${2:-60}
CC=clang CXX=clang++ cmake -S "$repo_root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOTA_FUZZ=ON -DOTA_BUILD_TESTS=OFF >/dev/null || exit 1
targets=(fuzz_tuf_metadata fuzz_bundle_header fuzz_uboot_env fuzz_delta_apply)
cmake --build "$build" --target "${targets[@]}" || exit 1
status=0
for t in "${targets[@]}"; do
    corpus="$build/corpus/$t"
    mkdir -p "$corpus" "$build/artifacts/$t"
    cp -n "$repo_root/tests/fuzz/corpus/$t"/* "$corpus/" 2>/dev/null || true
    log="$build/$t.log"
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "$build/bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$build/artifacts/$t/" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    if [ $rc -eq 0 ]; then
        echo "$t: ${seconds}s, ${execs:-?} executions, corpus $(ls "$corpus" | wc -l) inputs, no findings"
    else
        echo "$t: FAILED (exit $rc) after ${execs:-?} executions; artifacts in $build/artifacts/$t"
        grep -E 'ERROR|runtime error|SUMMARY' "$log" | head -5
        status=1
    fi
done
exit $status
