# Shared logic of the project's toolchain files (included by them, not used on its own).
#
# Three ways to find the target's libraries, first match wins:
#   1. OTA_SYSROOT: a complete target root filesystem (Yocto SDK, Buildroot staging, a chroot).
#      Used as CMAKE_SYSROOT; the compiler takes libc and headers from it.
#   2. DEBS_VARIABLE (armhf): a folder of unpacked Debian packages. Debian's cross compiler keeps
#      its own libc (/usr/<triplet>); the folder adds the -dev packages and the runtime libraries
#      that qemu-user loads.
#   3. Debian multiarch (aarch64): the :arch -dev packages installed on the build machine.
# Architecture-independent header-only packages (nlohmann-json, Catch2) come from the build
# machine's /usr in modes 2 and 3.

# Values given with -D on the first configure must also reach try_compile() projects.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES OTA_SYSROOT OTA_CROSS_PREFIX OTA_ARMHF_DEBS)

# A cache variable wins over the environment variable of the same name.
function(_ota_cross_setting out name default)
  if(DEFINED ${name} AND NOT "${${name}}" STREQUAL "")
    set(value "${${name}}")
  elseif(DEFINED ENV{${name}} AND NOT "$ENV{${name}}" STREQUAL "")
    set(value "$ENV{${name}}")
  else()
    set(value "${default}")
  endif()
  set(${out} "${value}" PARENT_SCOPE)
endfunction()

macro(ota_cross_setup)
  cmake_parse_arguments(_OTA "" "TRIPLET;QEMU;DEFAULT_RUNTIME_ROOT;DEBS_VARIABLE;DEFAULT_DEBS"
                        "RUNTIME_CHECK" ${ARGN})
  _ota_cross_setting(_ota_prefix OTA_CROSS_PREFIX "${_OTA_TRIPLET}-")
  _ota_cross_setting(_ota_sysroot OTA_SYSROOT "")
  set(_ota_debs "")
  if(_OTA_DEBS_VARIABLE)
    _ota_cross_setting(_ota_debs ${_OTA_DEBS_VARIABLE} "${_OTA_DEFAULT_DEBS}")
  endif()

  set(CMAKE_C_COMPILER ${_ota_prefix}gcc)
  set(CMAKE_CXX_COMPILER ${_ota_prefix}g++)
  set(CMAKE_LIBRARY_ARCHITECTURE ${_OTA_TRIPLET})

  if(_ota_sysroot)
    get_filename_component(_ota_sysroot "${_ota_sysroot}" ABSOLUTE)
    if(NOT IS_DIRECTORY "${_ota_sysroot}")
      message(FATAL_ERROR "OTA_SYSROOT=${_ota_sysroot} is not a directory")
    endif()
    set(CMAKE_SYSROOT "${_ota_sysroot}")
    set(CMAKE_FIND_ROOT_PATH "${_ota_sysroot}")
    set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_ota_sysroot}")
    set(ENV{PKG_CONFIG_LIBDIR}
        "${_ota_sysroot}/usr/lib/${_OTA_TRIPLET}/pkgconfig:${_ota_sysroot}/usr/lib/pkgconfig:${_ota_sysroot}/usr/share/pkgconfig")
    set(_ota_runtime_root "${_ota_sysroot}")
  elseif(_OTA_DEBS_VARIABLE)
    get_filename_component(_ota_debs "${_ota_debs}" ABSOLUTE)
    if(NOT EXISTS "${_ota_debs}/.complete")
      message(FATAL_ERROR
        "${_OTA_DEBS_VARIABLE}=${_ota_debs} holds no unpacked ${_OTA_TRIPLET} packages. Run\n"
        "  scripts/fetch-armhf-sysroot.sh ${_ota_debs}\n"
        "or point OTA_SYSROOT at your own target sysroot (docs/cross-builds.md).")
    endif()
    set(CMAKE_FIND_ROOT_PATH "${_ota_debs}" "/usr/${_OTA_TRIPLET}" "/usr")
    set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_ota_debs}")
    set(ENV{PKG_CONFIG_LIBDIR}
        "${_ota_debs}/usr/lib/${_OTA_TRIPLET}/pkgconfig:${_ota_debs}/usr/share/pkgconfig")
    # The linker must find the dependencies of the folder's shared libraries (libcurl -> ssl...).
    set(_ota_rpath_link
        "-Wl,-rpath-link,${_ota_debs}/usr/lib/${_OTA_TRIPLET}:${_ota_debs}/lib/${_OTA_TRIPLET}")
    set(CMAKE_EXE_LINKER_FLAGS_INIT "${_ota_rpath_link}")
    set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_ota_rpath_link}")
    set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_ota_rpath_link}")
    set(_ota_runtime_root "${_ota_debs}")
  else()
    # Both roots are needed: /usr/<triplet> for the cross libc, /usr for the multiarch
    # libraries (lib/<triplet>) and the architecture-independent CMake packages.
    set(CMAKE_FIND_ROOT_PATH "/usr/${_OTA_TRIPLET}" "/usr")
    # Without this FindCURL picks up the build machine's libcurl.pc.
    set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/${_OTA_TRIPLET}/pkgconfig:/usr/share/pkgconfig")
    set(_ota_runtime_root "${_OTA_DEFAULT_RUNTIME_ROOT}")
    if(_OTA_RUNTIME_CHECK)
      list(GET _OTA_RUNTIME_CHECK 0 _ota_check_file)
      list(GET _OTA_RUNTIME_CHECK 1 _ota_check_package)
      if(NOT EXISTS "${_ota_check_file}")
        message(WARNING "${_ota_check_file} is missing: tests cannot run under qemu-user. "
                        "Install the Debian package ${_ota_check_package}.")
      endif()
    endif()
  endif()

  set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
  set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
  set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

  # Target programs (tests, Catch2 test discovery, programs started by tests through
  # OTA_TEST_EMULATOR) run under qemu-user; binfmt_misc is not assumed.
  find_program(OTA_QEMU_USER ${_OTA_QEMU})
  if(OTA_QEMU_USER)
    set(CMAKE_CROSSCOMPILING_EMULATOR "${OTA_QEMU_USER};-L;${_ota_runtime_root}")
  else()
    message(WARNING "${_OTA_QEMU} not found (Debian package qemu-user): tests cannot run")
  endif()
endmacro()
