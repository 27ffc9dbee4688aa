#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan) and runs each for a bounded time on a copy
# of its seed corpus. Fails if any target finds a crash, a leak or undefined behaviour, and then
# prints the end of that target's log and the input that did it (base64), so a finding in CI can
# be replayed: `base64 -d > crash; BUILD/bin/TARGET crash`.
#   tests/fuzz/run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]
# OTA_FUZZ_SEED sets libFuzzer's seed (default: a new one each run, printed in the verdict).
set -uo pipefail
repo_root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?BUILD_DIR}
seconds=${2:-60}
CC=clang CXX=clang++ cmake -S "$repo_root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOTA_FUZZ=ON -DOTA_BUILD_TESTS=OFF >/dev/null || exit 1
targets=(fuzz_tuf_metadata fuzz_bundle_header fuzz_uboot_env fuzz_delta_apply fuzz_json fuzz_control_request)
cmake --build "$build" --target "${targets[@]}" || exit 1
# Runs one target and writes its verdict to BUILD/T.verdict.
run_target() {
    local t=$1 corpus="$build/corpus/$1" log="$build/$1.log" rc execs seed artifact
    # (a finding of an earlier run in this directory stays in artifacts/T.old)
    rm -rf "$build/artifacts/$t.old"
    [ ! -d "$build/artifacts/$t" ] || mv "$build/artifacts/$t" "$build/artifacts/$t.old"
    mkdir -p "$corpus" "$build/artifacts/$t"
    cp -n "$repo_root/tests/fuzz/corpus/$t"/* "$corpus/" 2>/dev/null || true
    # libFuzzer reads the seed as a signed 32-bit number and takes 0 for "pick one".
    seed=${OTA_FUZZ_SEED:-$(($(od -An -N4 -tu4 /dev/urandom | tr -d ' ') % 2147483646 + 1))}
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1:print_legend=0 \
        "$build/bin/$t" -seed="$seed" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$build/artifacts/$t/" "$corpus" >"$log" 2>&1
    rc=$?
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
    [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
    if [ $rc -eq 0 ]; then
        echo "$t: ${seconds}s, seed $seed, ${execs:-?} executions, corpus $(ls "$corpus" | wc -l) inputs, no findings" \
            >"$build/$t.verdict"
    else
        {
            echo "$t: FAILED (exit $rc) with seed $seed after ${execs:-?} executions; artifacts in $build/artifacts/$t"
            echo "--- $log from its first report on"
            grep -avE '^#[0-9]+' "$log" |
                sed -n '/==ERROR\|runtime error\|ERROR: libFuzzer\|deadly signal\|SUMMARY/,$p' | head -150
            for artifact in "$build/artifacts/$t"/*; do
                [ -f "$artifact" ] || continue
                echo "--- $(basename "$artifact") ($(stat -c %s "$artifact") bytes), base64$(
                    [ "$(stat -c %s "$artifact")" -le 65536 ] || echo ", first 64 KiB only"):"
                head -c 65536 "$artifact" | base64
            done
        } >"$build/$t.verdict"
    fi
}

# One target per core at a time: each still gets its full time on a core of its own. The verdict
# files decide the outcome (a job's exit status can be reaped before `wait -n` sees it).
jobs=$(nproc)
for t in "${targets[@]}"; do
    rm -f "$build/$t.verdict"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    run_target "$t" &
done
wait
status=0
for t in "${targets[@]}"; do
    if [ -s "$build/$t.verdict" ]; then cat "$build/$t.verdict"; else echo "$t: no verdict"; fi
    head -1 "$build/$t.verdict" 2>/dev/null | grep -q "no findings" || status=1
done
exit $status
