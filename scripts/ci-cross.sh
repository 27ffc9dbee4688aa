#!/bin/bash
# CI entry point for the ECU cross builds: build aarch64 and armhf once each and run the whole
# unit-test suite under qemu-user (ctest label `cross`). Prints the time of every stage and exits
# non-zero if any stage failed (all stages still run, so one CI log shows every failure).
#
# Environment:
#   OTA_CROSS_BUILD_PREFIX  build trees are <prefix><preset> (default: <repo>/build/)
#   OTA_ARMHF_DEBS        armhf package folder (default: toolchains/sysroots/armhf)
#   OTA_CROSS_TARGETS     presets to run (default: "aarch64 armhf")
#   OTA_JOBS              build and test parallelism (default: 2)
#   OTA_SKIP_APT=1        do not touch system packages (e.g. unprivileged runs)
#   OTA_CROSS_CXX_FLAGS   compiler flags of the builds (default "-O2 -DNDEBUG": no debug info)
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
build_prefix=${OTA_CROSS_BUILD_PREFIX:-$repo/build/}
export OTA_ARMHF_DEBS=${OTA_ARMHF_DEBS:-$repo/toolchains/sysroots/armhf}
targets=${OTA_CROSS_TARGETS:-aarch64 armhf}
jobs=${OTA_JOBS:-2}

failed=()
summary=()

# stage NAME COMMAND...: run, time, and record the result.
stage() {
    local name=$1
    shift
    echo "=== $name: $*"
    local start=$SECONDS
    "$@"
    local rc=$?
    local took=$((SECONDS - start))
    if [ $rc -eq 0 ]; then
        summary+=("$(printf '%-28s %5ss  ok' "$name" "$took")")
    else
        summary+=("$(printf '%-28s %5ss  FAILED (exit %d)' "$name" "$took" "$rc")")
        failed+=("$name")
    fi
    echo "=== $name: ${took}s, exit $rc"
    return $rc
}

host_packages="cmake ninja-build pkg-config crossbuild-essential-arm64 crossbuild-essential-armhf
    qemu-user nlohmann-json3-dev catch2 nginx libubootenv-tool u-boot-tools zstd bsdiff xdelta3 faketime"
arm64_packages="libmbedtls-dev:arm64 libcurl4-openssl-dev:arm64 libzstd-dev:arm64 zlib1g-dev:arm64
    libdivsufsort-dev:arm64 libsodium-dev:arm64 libstdc++6:arm64"

ensure_packages() {
    local missing
    # shellcheck disable=SC2086
    missing=$(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' $host_packages $arm64_packages \
        2>&1 | grep -v '^ii ' || true)
    if [ -z "$missing" ]; then
        echo "all packages present"
        return 0
    fi
    echo "missing: $missing"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    # Only arm64 becomes a dpkg architecture; armhf breaks apt here (see fetch-armhf-sysroot.sh).
    dpkg --print-foreign-architectures | grep -qx arm64 || $sudo dpkg --add-architecture arm64 || return 1
    $sudo apt-get update || return 1
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
        $host_packages $arm64_packages
}

start_all=$SECONDS
if [ "${OTA_SKIP_APT:-0}" != 1 ]; then
    stage "packages" ensure_packages
fi

for target in $targets; do
    dir=$build_prefix$target
    if [ "$target" = armhf ]; then
        stage "armhf sysroot" "$repo/scripts/fetch-armhf-sysroot.sh" "$OTA_ARMHF_DEBS" || continue
    fi
    # CI's builds need no debug information (the tests' reports name the failing check): the
    # preset's optimisation without -g, about an eighth less compile time.
    stage "$target configure" cmake -S "$repo" --preset "$target" -B "$dir" \
        -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${OTA_CROSS_CXX_FLAGS:--O2 -DNDEBUG}" \
        -DCMAKE_C_FLAGS_RELWITHDEBINFO="${OTA_CROSS_CXX_FLAGS:--O2 -DNDEBUG}" || continue
    stage "$target build" cmake --build "$dir" -j "$jobs" || continue
    stage "$target ctest -L cross" ctest --test-dir "$dir" -L cross -j "$jobs" \
        --output-on-failure --no-tests=error
done

echo
echo "=== cross CI summary (total $((SECONDS - start_all))s)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all cross stages passed"
