# All dependencies come from Debian packages (or an integrator's sysroot); nothing is downloaded.

# mbedTLS: Debian 12 ships neither a CMake config nor a pkg-config file.
find_path(MBEDTLS_INCLUDE_DIR mbedtls/version.h REQUIRED)
if(OTA_STATIC_DEPS)
  set(_ota_lib_prefix ${CMAKE_STATIC_LIBRARY_PREFIX})
  set(_ota_lib_suffix ${CMAKE_STATIC_LIBRARY_SUFFIX})
  find_library(MBEDTLS_LIBRARY NAMES ${_ota_lib_prefix}mbedtls${_ota_lib_suffix} REQUIRED)
  find_library(MBEDX509_LIBRARY NAMES ${_ota_lib_prefix}mbedx509${_ota_lib_suffix} REQUIRED)
  find_library(MBEDCRYPTO_LIBRARY NAMES ${_ota_lib_prefix}mbedcrypto${_ota_lib_suffix} REQUIRED)
else()
  find_library(MBEDTLS_LIBRARY mbedtls REQUIRED)
  find_library(MBEDX509_LIBRARY mbedx509 REQUIRED)
  find_library(MBEDCRYPTO_LIBRARY mbedcrypto REQUIRED)
endif()
add_library(ota_mbedtls INTERFACE)
target_include_directories(ota_mbedtls SYSTEM INTERFACE ${MBEDTLS_INCLUDE_DIR})
# Link order matters for static archives: tls -> x509 -> crypto.
target_link_libraries(ota_mbedtls INTERFACE ${MBEDTLS_LIBRARY} ${MBEDX509_LIBRARY} ${MBEDCRYPTO_LIBRARY})

# libsodium for Ed25519 signatures (mbedTLS 2.28 has no Ed25519), through its pkg-config file.
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)
add_library(ota_sodium INTERFACE)
if(OTA_STATIC_DEPS)
  find_library(SODIUM_STATIC_LIBRARY NAMES ${_ota_lib_prefix}sodium${_ota_lib_suffix}
               HINTS ${SODIUM_LIBRARY_DIRS} REQUIRED)
  target_include_directories(ota_sodium SYSTEM INTERFACE ${SODIUM_INCLUDE_DIRS})
  target_link_libraries(ota_sodium INTERFACE ${SODIUM_STATIC_LIBRARY})
else()
  target_link_libraries(ota_sodium INTERFACE PkgConfig::SODIUM)
endif()

find_package(CURL REQUIRED)
find_package(ZLIB REQUIRED) # CRC-32 of the U-Boot environment; already a libcurl dependency
find_package(nlohmann_json 3.10 REQUIRED CONFIG)
find_package(zstd REQUIRED CONFIG)
add_library(ota_zstd INTERFACE)
if(OTA_STATIC_DEPS AND TARGET zstd::libzstd_static)
  target_link_libraries(ota_zstd INTERFACE zstd::libzstd_static)
elseif(TARGET zstd::libzstd_shared)
  target_link_libraries(ota_zstd INTERFACE zstd::libzstd_shared)
else()
  target_link_libraries(ota_zstd INTERFACE zstd::libzstd_static)
endif()

find_package(Threads REQUIRED)

if(OTA_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED CONFIG)
  include(Catch)
endif()
