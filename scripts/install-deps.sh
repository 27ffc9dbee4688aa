#!/usr/bin/env bash
# Installs the Debian 12 packages the project needs (run as root). Idempotent.
#   install-deps.sh            build + tests on the host
#   install-deps.sh --cross    + aarch64/armhf cross compilers and qemu-user
#   install-deps.sh --qemu     + QEMU system emulation, U-Boot and image tools
#   install-deps.sh --bench    + SWUpdate, RAUC and tools for bench/install-bench.sh
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
    libmbedtls-dev libcurl4-openssl-dev nlohmann-json3-dev libzstd-dev zlib1g-dev catch2
    libdivsufsort-dev libsodium-dev nginx-light libubootenv-tool u-boot-tools faketime zstd bsdiff
    xdelta3 openssl curl time clang-format libfuse3-dev
    p7zip-full zip squashfs-tools)
# bench/install-bench.sh (not CI's tests): the peers and what their bundles need.
bench=(swupdate rauc dbus squashfs-tools cpio e2fsprogs mmdebstrap)
cross=0
qemu=0
for arg in "$@"; do
    case "$arg" in
    --bench) packages+=("${bench[@]}") ;;
    --cross) cross=1 ;;
    --qemu) qemu=1 ;;
    *) echo "unknown option $arg" >&2; exit 1 ;;
    esac
done
if [ $cross = 1 ] || [ $qemu = 1 ]; then
    packages+=(crossbuild-essential-arm64 crossbuild-essential-armhf qemu-user)
    dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
    packages+=(libmbedtls-dev:arm64 libcurl4-openssl-dev:arm64 libzstd-dev:arm64 zlib1g-dev:arm64
        libsodium-dev:arm64)
fi
if [ $qemu = 1 ]; then
    packages+=(qemu-system-arm u-boot-qemu cpio e2fsprogs dosfstools mtools gdisk fdisk
        device-tree-compiler)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "warning: apt-get update failed; trying with the current package lists" >&2
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
