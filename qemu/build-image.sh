#!/bin/bash
# Builds the emulated aarch64 ECU from Debian packages only:
#   OUT_DIR/disk.img        GPT: 1 boot (vfat, boot.scr) 2 slot A 3 slot B 4 U-Boot env 5 data
#   OUT_DIR/flash1.img      pflash bank 1: U-Boot's read-only factory environment (bootcmd)
#   OUT_DIR/slot-*.img      slot images (ext4: /boot/Image, /boot/initrd.img, busybox userland,
#                           ota-agent) for version 1 and the version-2 variants good/bad/hang
#   OUT_DIR/repo-*.img      update repositories (ext4 disks for the guest's /dev/vdb)
#   OUT_DIR/build.env       facts the scenario runner reads (offsets, hashes)
# Usage: qemu/build-image.sh OUT_DIR
# Environment:
#   OTA_QEMU_CACHE     where downloaded .debs are kept (default OUT_DIR/cache)
#   OTA_AGENT          "build" (default: cross-build ota-agent), "standin" (shell stand-in), or the
#                      path of an already cross-built aarch64 ota-agent
#   OTA_CROSS_BUILD    cross build directory for OTA_AGENT=build (default OUT_DIR/build-aarch64)
#   OTA_HOST_BUILD     host build directory for ota-publish (default OUT_DIR/build-host)
#   OTA_PUBLISH        an already built host ota-publish (skips the host build)
#   OTA_QEMU_DELTA=0   skip the delta repository (making the delta takes minutes)
set -euo pipefail
OUT=$(realpath -m "${1:?usage: $0 OUT_DIR}")
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
CACHE=${OTA_QEMU_CACHE:-$OUT/cache}
AGENT_MODE=${OTA_AGENT:-build}
CROSS_BUILD=${OTA_CROSS_BUILD:-$OUT/build-aarch64}
HOST_BUILD=${OTA_HOST_BUILD:-$OUT/build-host}
SLOT_MIB=64
TRIES=3
export E2FSPROGS_FAKE_TIME=1700000000 # reproducible filesystems: deltas between versions stay small
T0=$(date +%s)
log() { echo "[build-image +$(( $(date +%s) - T0 ))s] $*"; }

mkdir -p "$OUT" "$CACHE/debs"
WORK=$OUT/work
rm -rf "$WORK"
mkdir -p "$WORK"

# ---- Debian packages for the guest (arm64) ---------------------------------------------------
KPKG=$(apt-cache depends linux-image-arm64:arm64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { echo "cannot resolve linux-image-arm64:arm64 (dpkg --add-architecture arm64?)"; exit 1; }
GUEST_PKGS="$KPKG busybox-static:arm64 libubootenv-tool:arm64 libubootenv0.1:arm64 libyaml-0-2:arm64"
(
  cd "$CACHE/debs"
  need=""
  for p in $GUEST_PKGS; do
    n=${p%%:*}
    ls "${n}"_*_arm64.deb >/dev/null 2>&1 || need="$need $p"
  done
  if [ -n "$need" ]; then log "apt-get download$need"; apt-get download $need 2>&1 | grep -v '^W: Download is performed unsandboxed' || true; fi
)
DEB=$WORK/deb
mkdir -p "$DEB"
for p in $GUEST_PKGS; do
  n=${p%%:*}
  f=$(ls -t "$CACHE/debs/${n}"_*_arm64.deb | head -1)
  dpkg -x "$f" "$DEB"
done
KVER=$(ls "$DEB/lib/modules" | head -1)
KIMAGE=$DEB/boot/vmlinuz-$KVER
log "kernel $KVER"

# ---- ota-agent (cross) and ota-publish (host) -------------------------------------------------
build_target() { # dir target [cmake args...]
  local dir=$1 target=$2; shift 2
  [ -f "$dir/build.ninja" ] || cmake -S "$SRC" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DOTA_BUILD_TESTS=OFF "$@" >"$OUT/cmake-$(basename "$dir").log" 2>&1 ||
      { cat "$OUT/cmake-$(basename "$dir").log"; return 1; }
  cmake --build "$dir" --target "$target" -j2
}
case "$AGENT_MODE" in
  standin) AGENT_BIN=$HERE/guest/ota-agent-standin ;;
  build)
    log "cross-building ota-agent in $CROSS_BUILD"
    build_target "$CROSS_BUILD" ota-agent -DCMAKE_TOOLCHAIN_FILE="$SRC/toolchains/aarch64-linux-gnu.cmake" \
        -DOTA_BUILD_PUBLISHER=OFF
    AGENT_BIN=$CROSS_BUILD/bin/ota-agent ;;
  *) AGENT_BIN=$AGENT_MODE ;;
esac
[ -x "$AGENT_BIN" ] || { echo "no agent at $AGENT_BIN"; exit 1; }
if [ "$AGENT_MODE" != standin ]; then
  if [ -n "${OTA_PUBLISH:-}" ]; then PUBLISH=$OTA_PUBLISH; else
    log "building ota-publish in $HOST_BUILD"
    build_target "$HOST_BUILD" ota-publish
    PUBLISH=$HOST_BUILD/bin/ota-publish
  fi
fi

# ---- shared libraries of the guest programs ---------------------------------------------------
LIBDIRS="/lib/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/aarch64-linux-gnu/lib $DEB/usr/lib/aarch64-linux-gnu $DEB/lib/aarch64-linux-gnu"
find_lib() { for d in $LIBDIRS; do [ -e "$d/$1" ] && { echo "$d/$1"; return; }; done; echo "missing library $1" >&2; return 1; }
needed_libs() { # recursive DT_NEEDED closure of the given ELF files
  local todo=("$@") seen=" " f n
  while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}; todo=("${todo[@]:1}")
    for n in $(aarch64-linux-gnu-readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      case "$seen" in *" $n "*) continue ;; esac
      seen="$seen$n "
      local p; p=$(find_lib "$n")
      echo "$p"
      todo+=("$p")
    done
  done
}

# ---- initramfs: busybox + modules + init (the same for every version) --------------------------
IRD=$WORK/initramfs
mkdir -p "$IRD"/{bin,dev,proc,sys,newroot,lib/modules}
cp "$DEB/bin/busybox" "$IRD/bin/"
for a in sh mount umount insmod sleep cat mkdir switch_root echo; do ln -s busybox "$IRD/bin/$a"; done
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk crc16 mbcache jbd2 \
         crc32c_generic ext4 i6300esb; do
  cp "$(find "$DEB/lib/modules/$KVER" -name "$m.ko")" "$IRD/lib/modules/"
done
cp "$HERE/guest/initramfs-init" "$IRD/init"
(cd "$IRD" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet) > "$WORK/initrd.img"

# ---- trust root and signing keys (real agent) -------------------------------------------------
if [ "$AGENT_MODE" != standin ]; then
  . "$HERE/publish.sh"
  publish_init "$OUT/keys"
fi

# ---- slot images --------------------------------------------------------------------------------
APPLETS=$(qemu-aarch64 "$DEB/bin/busybox" --list)
make_slot() { # version variant(good|bad|hang) out.img
  local version=$1 variant=$2 img=$3 r=$WORK/rootfs-$1-$2
  rm -rf "$r"; mkdir -p "$r"/{bin,sbin,usr/bin,etc/ota,lib/aarch64-linux-gnu,boot,proc,sys,dev,tmp,run,var,data,repo}
  cp "$DEB/bin/busybox" "$r/bin/"
  for a in $APPLETS; do case $a in busybox|init|linuxrc) ;; *) ln -s busybox "$r/bin/$a" ;; esac; done
  cp "$HERE/guest/init" "$r/sbin/init"
  if [ "$AGENT_MODE" = standin ]; then cp "$AGENT_BIN" "$r/usr/bin/ota-agent"
  else aarch64-linux-gnu-strip -o "$r/usr/bin/ota-agent" "$AGENT_BIN"; fi
  cp "$DEB/usr/bin/fw_printenv" "$r/usr/bin/"; ln -s fw_printenv "$r/usr/bin/fw_setenv"
  # libcurl is not in the agent's DT_NEEDED: the agent loads it at its first download (dlopen).
  local curl=""
  [ "$AGENT_MODE" = standin ] || curl=$(find_lib libcurl.so.4)
  for l in $( (needed_libs "$AGENT_BIN" "$DEB/usr/bin/fw_printenv" ${curl:+"$curl"}; echo $curl) | sort -u); do
    cp -L "$l" "$r/lib/aarch64-linux-gnu/"
  done
  cp -L "$(find_lib ld-linux-aarch64.so.1)" "$r/lib/ld-linux-aarch64.so.1"
  # The kernel's crypto API for the agent's `hash_engine: kernel`: AF_ALG, and SHA-256 and
  # SHA-512 in ARMv8 code (Debian builds SHA-512 as a module); init loads them in this order
  # (each after what it depends on).
  mkdir -p "$r/lib/modules"
  for m in af_alg algif_hash sha256-arm64 sha2-ce sha512_generic sha512-arm64 sha512-ce; do
    local ko; ko=$(find "$DEB/lib/modules/$KVER" -name "$m.ko")
    [ -n "$ko" ] || { echo "no $m.ko in the kernel package"; return 1; }
    cp "$ko" "$r/lib/modules/"
  done
  cp "$HERE/guest/fw_env.config" "$r/etc/fw_env.config"
  cp "$HERE/guest/ota-health" "$r/usr/bin/ota-health"
  echo "$version" > "$r/etc/os-version"
  if [ "$variant" = bad ]; then echo fail; else echo ok; fi > "$r/etc/ota/health-expect"
  if [ "$variant" = hang ]; then cp "$HERE/guest/rc.app-hang" "$r/etc/rc.app"; else cp "$HERE/guest/rc.app" "$r/etc/rc.app"; fi
  if [ "$AGENT_MODE" != standin ]; then publish_guest_config "$r" "$version"; fi
  cp "$KIMAGE" "$r/boot/Image"
  cp "$WORK/initrd.img" "$r/boot/initrd.img"
  rm -f "$img"
  mkfs.ext4 -q -F -L "slot-v$version" -U 6d1c0b5e-0000-4000-8000-00000000000$version \
    -E hash_seed=6d1c0b5e-0000-4000-8000-000000000000,root_owner=0:0 -O ^has_journal \
    -d "$r" "$img" ${SLOT_MIB}M
}
log "slot images"
make_slot 1 good "$OUT/slot-v1.img"
make_slot 2 good "$OUT/slot-v2.img"
make_slot 2 bad "$OUT/slot-v2-bad.img"
make_slot 2 hang "$OUT/slot-v2-hang.img"

# ---- update repositories (one disk per scenario family) ----------------------------------------
make_repo() { # name slot.img [old.img:old_version (adds a delta)]
  local name=$1 img=$2 from=${3:-} d=$WORK/repo-$1
  rm -rf "$d"; mkdir -p "$d"
  if [ "$AGENT_MODE" = standin ]; then
    cp --sparse=always "$img" "$d/slot.img"
    sha256sum "$img" | cut -d' ' -f1 > "$d/slot.sha256"
    echo 2 > "$d/version"
  else
    publish_repo "$d" "$img" 2 "$from"
  fi
  local kib; kib=$(du -sk "$d" | cut -f1)
  rm -f "$OUT/repo-$name.img"
  mkfs.ext4 -q -F -L repo -O ^has_journal -d "$d" "$OUT/repo-$name.img" $(( kib + kib / 4 + 4096 ))K
}
log "repositories"
make_repo good "$OUT/slot-v2.img"
[ "$AGENT_MODE" = standin ] || [ "${OTA_QEMU_DELTA:-1}" = 0 ] || make_repo delta "$OUT/slot-v2.img" "$OUT/slot-v1.img:1"
make_repo bad "$OUT/slot-v2-bad.img"
make_repo hang "$OUT/slot-v2-hang.img"

# ---- boot partition, environment, data, disk --------------------------------------------------
mkimage -A arm64 -O linux -T script -C none -n "OTA A/B boot" -d "$HERE/boot.cmd" "$WORK/boot.scr" >/dev/null
rm -f "$WORK/boot.vfat"
mkfs.vfat -C -n BOOT "$WORK/boot.vfat" $((16 * 1024)) >/dev/null
mcopy -i "$WORK/boot.vfat" "$WORK/boot.scr" ::boot.scr
printf 'BOOT_ORDER=A B\nBOOT_A_LEFT=%x\nBOOT_B_LEFT=%x\n' $TRIES $TRIES > "$WORK/env.txt"
mkenvimage -s 0x4000 -o "$WORK/env.bin" "$WORK/env.txt"
mkdir -p "$WORK/data/ota"
rm -f "$WORK/data.img"
mkfs.ext4 -q -F -L data -d "$WORK/data" "$WORK/data.img" 32M

# Partition starts in 512-byte sectors (1 MiB aligned); the runner reads them from build.env.
P1=2048; P2=$((P1 + 16 * 2048)); P3=$((P2 + SLOT_MIB * 2048)); P4=$((P3 + SLOT_MIB * 2048))
P5=$((P4 + 2048)); END=$((P5 + 32 * 2048))
DISK=$OUT/disk.img
rm -f "$DISK"
truncate -s $(( (END + 2048) * 512 )) "$DISK"
sgdisk -o \
  -n 1:$P1:$((P2 - 1)) -t 1:0700 -c 1:boot \
  -n 2:$P2:$((P3 - 1)) -t 2:8300 -c 2:rootfs-A \
  -n 3:$P3:$((P4 - 1)) -t 3:8300 -c 3:rootfs-B \
  -n 4:$P4:$((P5 - 1)) -t 4:8300 -c 4:uboot-env \
  -n 5:$P5:$((END - 1)) -t 5:8300 -c 5:data "$DISK" >/dev/null
put() { dd if="$1" of="$DISK" bs=512 seek="$2" conv=notrunc,sparse status=none; }
put "$WORK/boot.vfat" $P1
put "$OUT/slot-v1.img" $P2
put "$OUT/slot-v1.img" $P3 # factory: both slots hold version 1
put "$WORK/env.bin" $P4
put "$WORK/data.img" $P5

# U-Boot's factory environment in pflash bank 1 (read-only for U-Boot on QEMU 7.2: no saveenv).
cat > "$WORK/factory-env.txt" <<'ENV'
bootdelay=0
baudrate=115200
kernel_addr_r=0x40400000
ramdisk_addr_r=0x44000000
scriptaddr=0x40200000
fdt_addr=0x40000000
bootcmd=virtio scan; if load virtio 0:1 ${scriptaddr} boot.scr; then source ${scriptaddr}; fi; echo "OTA: no boot script"; reset
ENV
mkenvimage -s 0x40000 -o "$OUT/flash1.img" "$WORK/factory-env.txt"
truncate -s 64M "$OUT/flash1.img"

{
  echo "KERNEL_VERSION=$KVER"
  echo "AGENT_MODE=$AGENT_MODE"
  echo "SLOT_A_SECTOR=$P2"; echo "SLOT_B_SECTOR=$P3"; echo "ENV_SECTOR=$P4"; echo "DATA_SECTOR=$P5"
  echo "DATA_SECTORS=$((END - P5))"
  echo "SLOT_BYTES=$((SLOT_MIB * 1024 * 1024))"
  # Console line that starts the slot write (the power-cut scenario cuts after it).
  if [ "$AGENT_MODE" = standin ]; then echo "INSTALL_MARKER='standin: writing slot'"; else echo "INSTALL_MARKER='$AGENT_INSTALL_MARKER'"; fi
  for v in v1 v2 v2-bad v2-hang; do
    echo "SHA_$(echo $v | tr a-z- A-Z_)=$(sha256sum "$OUT/slot-$v.img" | cut -d' ' -f1)"
  done
} > "$OUT/build.env"
rm -rf "$WORK"
log "done: $DISK"
