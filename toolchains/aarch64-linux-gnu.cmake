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
  # Debian's cross libc (libc6-arm64-cross): what qemu-user needs to find the dynamic loader.
  DEFAULT_RUNTIME_ROOT /usr/${_ota_triplet})
