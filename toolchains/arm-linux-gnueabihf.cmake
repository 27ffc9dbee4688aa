# Cross build for 32-bit ARM Linux ECUs (arm-linux-gnueabihf, ARMv7 hard-float).
#
# Default: Debian's cross compiler (crossbuild-essential-armhf) against a folder of unpacked
# Debian armhf packages made by scripts/fetch-armhf-sysroot.sh (the armhf dpkg architecture is
# not used: it breaks apt on Debian 12 build machines). The folder is OTA_ARMHF_DEBS (cache or
# environment variable), by default toolchains/sysroots/armhf (gitignored).
#
# Own sysroot: set OTA_SYSROOT (cache variable or environment variable) to a complete target
# root filesystem (Yocto's $SDKTARGETSYSROOT, Buildroot's output/staging); it then becomes
# CMAKE_SYSROOT and the qemu-user library prefix. See docs/cross-builds.md.
#
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)

# GCC notes that the ARM parameter-passing ABI of some std:: types changed in GCC 7.1; everything
# here is built by one compiler, so the hundreds of notes are noise.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")

set(_ota_triplet arm-linux-gnueabihf)
include(${CMAKE_CURRENT_LIST_DIR}/ota-cross-common.cmake)
ota_cross_setup(
  TRIPLET ${_ota_triplet}
  QEMU qemu-arm
  DEBS_VARIABLE OTA_ARMHF_DEBS
  DEFAULT_DEBS ${CMAKE_CURRENT_LIST_DIR}/sysroots/armhf)
