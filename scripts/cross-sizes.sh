#!/bin/bash
# Build the agent for both ECU targets, dynamic and with static mbedTLS + zstd
# (-DOTA_STATIC_DEPS=ON), strip it with the cross strip and print the stripped sizes.
#
# Usage: scripts/cross-sizes.sh [TARGET...]        (default target: ota-agent)
# Environment:
#   OTA_SIZES_BUILD_PREFIX  build trees are <prefix><arch>-<linkage> (default: <repo>/build/sizes-)
#   OTA_SIZE_PROFILE        release: the presets' RelWithDebInfo (-O2), the default
#                           small:   -Os with -ffunction-sections/-fdata-sections and --gc-sections
#   OTA_SIZES_ARCHES        default "aarch64 armhf"
#   OTA_JOBS                build parallelism (default 2)
# Budget: the aarch64 dynamic ota-agent must stay under 1.5 MiB stripped; the script fails if not.
set -uo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo" || exit 1
prefix=${OTA_SIZES_BUILD_PREFIX:-$repo/build/sizes-}
profile=${OTA_SIZE_PROFILE:-release}
arches=${OTA_SIZES_ARCHES:-aarch64 armhf}
jobs=${OTA_JOBS:-2}
programs=("$@")
[ ${#programs[@]} -gt 0 ] || programs=(ota-agent)
budget=$((1536 * 1024))

case $profile in
release) profile_args=() ;;
small)
    profile_args=(-DCMAKE_BUILD_TYPE=MinSizeRel
        "-DCMAKE_C_FLAGS=-ffunction-sections -fdata-sections"
        "-DCMAKE_CXX_FLAGS=-ffunction-sections -fdata-sections"
        "-DCMAKE_EXE_LINKER_FLAGS=-Wl,--gc-sections")
    ;;
*) echo "unknown OTA_SIZE_PROFILE=$profile" >&2; exit 2 ;;
esac

[ -f "${OTA_ARMHF_DEBS:-$repo/toolchains/sysroots/armhf}/.complete" ] ||
    "$repo/scripts/fetch-armhf-sysroot.sh" "${OTA_ARMHF_DEBS:-$repo/toolchains/sysroots/armhf}" || exit 1

rows=()
status=0
for arch in $arches; do
    for linkage in dynamic static; do
        dir=$prefix$arch-$linkage
        static=OFF
        [ $linkage = static ] && static=ON
        start=$SECONDS
        if ! cmake --preset "$arch" -B "$dir" -DOTA_BUILD_TESTS=OFF -DOTA_BUILD_PUBLISHER=OFF \
            -DOTA_STATIC_DEPS=$static "${profile_args[@]}" >"$dir.configure.log" 2>&1; then
            echo "configure $arch $linkage failed: $dir.configure.log" >&2
            status=1
            continue
        fi
        strip=$(sed -n 's/^CMAKE_STRIP:FILEPATH=//p' "$dir/CMakeCache.txt")
        readelf=${strip%strip}readelf
        for program in "${programs[@]}"; do
            if ! cmake --build "$dir" --target "$program" -j "$jobs" >"$dir.build.log" 2>&1; then
                echo "build $program $arch $linkage failed: $dir.build.log" >&2
                tail -20 "$dir.build.log" >&2
                status=1
                continue
            fi
            "$strip" -o "$dir/$program.stripped" "$dir/bin/$program" || { status=1; continue; }
            size=$(stat -c %s "$dir/$program.stripped")
            needed=$("$readelf" -d "$dir/$program.stripped" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' |
                sed 's/\.so.*//' | tr '\n' ' ')
            note=""
            if [ "$program" = ota-agent ] && [ $arch = aarch64 ] && [ $linkage = dynamic ] &&
                [ "$size" -ge $budget ]; then
                note="  OVER 1.5 MiB BUDGET"
                status=1
            fi
            rows+=("$(printf '%-12s %-8s %-8s %10d %8s KiB  %4ss  %s%s' "$program" "$arch" "$linkage" \
                "$size" "$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1024 }')" $((SECONDS - start)) "$needed" "$note")")
        done
    done
done

echo
echo "Stripped sizes (profile: $profile)"
printf '%-12s %-8s %-8s %10s %12s  %5s  %s\n' program arch linkage bytes size build "dynamic libraries (NEEDED)"
printf '%s\n' "${rows[@]}"
exit $status
