#!/bin/sh
# Fill DIR with unpacked Debian armhf packages: the libraries and headers the agent links against
# and the runtime (libc, libstdc++) that qemu-arm loads for the tests. Used by
# toolchains/arm-linux-gnueabihf.cmake. With libc6-dev and the header-only packages included, DIR
# also works as a complete sysroot (-DOTA_SYSROOT=DIR).
#
# Usage: scripts/fetch-armhf-sysroot.sh [DIR]   (default: toolchains/sysroots/armhf)
# Environment: OTA_DEBIAN_MIRROR (default http://deb.debian.org/debian),
#              OTA_DEBIAN_SECURITY (default http://deb.debian.org/debian-security),
#              OTA_DEBIAN_SUITE (default: the build machine's codename, else bookworm).
#
# The armhf dpkg architecture is deliberately NOT added to the build machine: on Debian 12 a stale
# armhf index breaks apt-get update for the whole system. Instead a private APT configuration
# (own lists, empty dpkg status) resolves and downloads the packages, and dpkg -x unpacks them.
# Idempotent: a complete DIR for the same package set is left alone. Needs no root.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/../toolchains/sysroots/armhf}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

packages="libcurl4-openssl-dev libmbedtls-dev libzstd-dev zlib1g-dev libdivsufsort-dev libsodium-dev
    nlohmann-json3-dev catch2
    libc6 libc6-dev libstdc++6 libgcc-s1"
mirror=${OTA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${OTA_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
suite=${OTA_DEBIAN_SUITE:-$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")}
suite=${suite:-bookworm}
stamp="suite=$suite packages=$packages"

if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ]; then
    echo "armhf sysroot $dir is complete"
    exit 0
fi
rm -f "$dir/.complete"

apt_dir="$dir/.apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/etc/preferences.d"
: >"$apt_dir/status"
cat >"$apt_dir/sources.list" <<SOURCES
deb [arch=armhf] $mirror $suite main
deb [arch=armhf] $mirror $suite-updates main
deb [arch=armhf] $security $suite-security main
SOURCES
cat >"$apt_dir/apt.conf" <<CONF
APT::Architecture "armhf";
APT::Architectures { "armhf"; };
APT::Install-Recommends "false";
APT::Get::AllowUnauthenticated "false";
Dir::State "$apt_dir";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir";
Dir::Cache::archives "$apt_dir/archives";
Dir::Etc::SourceList "$apt_dir/sources.list";
Dir::Etc::SourceParts "$apt_dir/etc/sources.list.d";
Dir::Etc::Preferences "$apt_dir/etc/preferences";
Dir::Etc::PreferencesParts "$apt_dir/etc/preferences.d";
Debug::NoLocking "true";
CONF
export APT_CONFIG="$apt_dir/apt.conf"

# One armhf index of the security suite can be stale and makes apt-get update exit non-zero even
# though every index we need arrived; the install step below fails loudly if one is missing.
apt-get -q update || echo "note: apt-get update exited non-zero (known stale armhf index); continuing"

# With an empty dpkg status, a download-only install resolves the full dependency closure.
# shellcheck disable=SC2086
apt-get -q -y --download-only --no-install-recommends install $packages

count=0
for deb in "$apt_dir"/archives/*.deb; do
    dpkg -x "$deb" "$dir"
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "no packages downloaded" >&2; exit 1; }

# Programs from the packages are useless on the build machine, and qemu-user's -L prefix would
# redirect the tests' /bin/sh to them: keep only libraries and headers.
rm -rf "$dir/bin" "$dir/sbin" "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/libexec" \
    "$dir/usr/share/doc" "$dir/usr/share/man" "$dir/usr/share/locale" "$dir/usr/share/lintian"
rm -f "$apt_dir"/archives/*.deb

# Debian's -dev symlinks are absolute (libz.so -> /lib/<triplet>/libz.so.1...); on the build
# machine they would dangle, and CMake would silently fall back to the static archive.
find "$dir" -type l -lname '/*' | while read -r link; do
    target=$(readlink "$link")
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dir$target")" "$link"
done

echo "$stamp" >"$dir/.complete"
echo "armhf sysroot $dir: $count packages, $(du -sh "$dir" --exclude=.apt | cut -f1)"
