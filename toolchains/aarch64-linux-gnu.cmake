# Cross build for 64-bit ARM Linux ECUs (aarch64-linux-gnu).
#
# Default: Debian's cross compiler (crossbuild-essential-arm64) with the :arm64 multiarch -dev
# packages installed on the build machine (dpkg --add-architecture arm64).
#
# Own sysroot: set OTA_SYSROOT (cache variable or environment variable) to a complete target
# root filesystem (Yocto's $SDKTARGETSYSROOT, Buildroot's output/staging, a Debian arm64 chroot).
# It then becomes CMAKE_SYSROOT and the qemu-user library prefix. OTA_CROSS_PREFIX overrides the
# compiler prefix (default aarch64-linux-gnu-). See docs/cross-builds.md.
#
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(_ota_triplet aarch64-linux-gnu)
include(${CMAKE_CURRENT_LIST_DIR}/ota-cross-common.cmake)
ota_cross_setup(
  TRIPLET ${_ota_triplet}
  QEMU qemu-aarch64
  # Run on the multiarch runtime (libc6:arm64, libstdc++6:arm64), NOT with
  # -L /usr/aarch64-linux-gnu: that loader (libc6-arm64-cross) would load libc.so.6 of a
  # different build from /lib/aarch64-linux-gnu through the build machine's ld.so.cache, and a
  # mismatched loader and libc hang in pthread_create under qemu.
  DEFAULT_RUNTIME_ROOT /
  RUNTIME_CHECK /usr/lib/${_ota_triplet}/libstdc++.so.6 "libstdc++6:arm64")
