#!/bin/bash
# Full-image install benchmark (issue 14): one 256 MiB ext4 image installed by `ota-agent install`
# (each hash engine), SWUpdate and RAUC (Debian packages), and the floors (zstd -d + write + fsync,
# with and without an OpenSSL SHA-256 of the stream), in one run, interleaved, >= 5 runs each.
# Not a test: it takes minutes and its figures depend on the machine's load.
#
#   bench/install-bench.sh [--build DIR] [--tree DIR] [--work DIR] [--runs N]
#                          [--engines "mbedtls openssl kernel"] [--out FILE]
#
# --build   build directory with bin/ota-agent, bin/ota-publish, bin/ota-sim (default: build)
# --tree    the root file system tree put into the image (default: the corpus's rootfs v2 tree,
#           /work/corpus/.download/rootfs/v2, made by shared/corpus/make-corpus.sh: a minimal
#           Debian 12 arm64 system plus curl, libmbedtls14 and zstd, ~210 MB)
# --work    scratch space (default /tmp/install-bench); the targets are plain 256 MiB files there
# --runs    runs per method (default 5)
# --engines ota-agent hash engines to measure (default: every engine `ota-agent apply` accepts
#           here); `auto` is measured as well
# --out     the markdown file whose install section is (re)written (default docs/benchmarks.md)
#
# Needs (Debian 12): swupdate rauc dbus squashfs-tools e2fsprogs cpio zstd openssl time.
# What each method verifies (so what the times buy): ota-agent checks the bundle's SHA-256
# against signed TUF metadata, each blob's SHA-256 and, after fsync and dropping the slot's cached
# pages, every byte read back from the storage; SWUpdate checks the CMS signature of
# sw-description and the SHA-256 of the compressed stream (its raw handler does not fsync: the
# run adds `sync TARGET`); RAUC (plain bundle) checks the CMS signature over the whole bundle
# file, then copies the image out of the mounted squashfs and fsyncs.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
BUILD=$REPO/build
TREE=/work/corpus/.download/rootfs/v2
WORK=/tmp/install-bench
RUNS=5
ENGINES=""
OUT=$REPO/docs/benchmarks.md
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --tree) TREE=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --engines) ENGINES=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
BUILD=$(realpath "$BUILD")
mkdir -p "$WORK"
WORK=$(realpath "$WORK")
AGENT=$BUILD/bin/ota-agent
SIZE=$((256 << 20))
log() { echo "== $* ($(date +%T))" >&2; }

# --- the image and every method's bundle (made once, kept in WORK) ----------------------------
IMG=$WORK/rootfs.ext4
if [ ! -s "$IMG" ]; then
  [ -d "$TREE" ] || { echo "no tree at $TREE (run shared/corpus/make-corpus.sh, or --tree)" >&2; exit 1; }
  log "image: 256 MiB ext4 of $TREE"
  rm -f "$IMG.tmp"; truncate -s 256M "$IMG.tmp"
  E2FSPROGS_FAKE_TIME=1792000000 mke2fs -q -F -t ext4 -b 4096 -L rootfs \
    -U 2d3c1f0e-9a8b-4c7d-8e6f-5a4b3c2d1e0f \
    -E root_owner=0:0,hash_seed=7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a090 -d "$TREE" "$IMG.tmp"
  mv "$IMG.tmp" "$IMG"
fi
USED=$(dumpe2fs -h "$IMG" 2>/dev/null | awk -F: '/^Block count/ {b=$2} /^Free blocks/ {f=$2} END {printf "%.0f", (b - f) * 4096 / 1e6}')

# ota-agent: a TUF repository (file://, so no libcurl) listing the bundles, a simulated ECU.
# Bundles (zstd level 19): the publisher's default (format 3: 2 MiB ops, a SHA-256 per 1 MiB
# chunk of the image in a binary header), the same in format 1 (one whole-image hash), and the
# default with 1 MiB ops. Each is built once; a bundle already in OURS is kept.
OURS=$WORK/ours
mkdir -p "$OURS"
bundle() { # NAME ota-publish-bundle-options...
  local name=$1; shift
  [ -s "$OURS/$name.bundle" ] && return 0
  log "ota-agent bundle $name"
  "$BUILD/bin/ota-publish" bundle --image "$IMG" --out "$OURS/$name.bundle" "$@" >/dev/null
  rm -f "$OURS/ready"
}
bundle default
bundle format1 --format 1
bundle ops1m --chunk-size 1048576
if [ ! -s "$OURS/ready" ]; then
  rm -rf "$OURS/repo" "$OURS/ecu" "$OURS/state" "$OURS/state.pristine" "$OURS/env.pristine"
  "$BUILD/bin/ota-publish" init --repo "$OURS/repo" >/dev/null
  for name in default format1 ops1m; do
    "$BUILD/bin/ota-publish" add --repo "$OURS/repo" --bundle "$OURS/$name.bundle" \
      --hardware-id bench-ecu --version 2 --name "rootfs-2.$name.bundle" >/dev/null
  done
  # Slot A runs a simulator image (version 1) so the simulated ECU boots; B receives the image.
  "$BUILD/bin/ota-sim" make-image --version 1 --size 1048576 --seed 1 "$OURS/v1.img" >/dev/null
  "$BUILD/bin/ota-sim" create --dir "$OURS/ecu" --slot-size $SIZE --image-a "$OURS/v1.img" >/dev/null
  cp "$OURS/repo/metadata/1.root.json" "$OURS/root.json"
  touch "$OURS/ready"
fi
config() { # ENGINE -> config file
  local c=$OURS/agent-$1.json
  cat >"$c" <<EOF
{"hardware_id": "bench-ecu", "state_dir": "$OURS/state", "trusted_root": "$OURS/root.json",
 "metadata_url": "file://$OURS/repo/metadata/", "targets_url": "file://$OURS/repo/targets/",
 "installed_version": 1, "hash_engine": "$1",
 "slots": {"A": "$OURS/ecu/slot-A.img", "B": "$OURS/ecu/slot-B.img"},
 "bootloader": {"type": "uboot", "fw_env_config": "$OURS/ecu/fw_env.config",
                "cmdline": "$OURS/ecu/cmdline", "boot_id": "$OURS/ecu/boot_id"}}
EOF
  echo "$c"
}
# The ECU before an install: metadata already refreshed (as on a device that polls), boot
# environment as created.
if [ ! -d "$OURS/state.pristine" ]; then
  rm -rf "$OURS/state"; "$AGENT" --config "$(config mbedtls)" check >/dev/null 2>&1
  cp -a "$OURS/state" "$OURS/state.pristine"
  mkdir -p "$OURS/env.pristine"
  cp -a "$OURS/ecu/uboot.env" "$OURS/ecu/fw_env.config" "$OURS/ecu/cmdline" "$OURS/ecu/boot_id" \
    "$OURS/env.pristine/"
fi
reset_ecu() {
  rm -rf "$OURS/state"; cp -a "$OURS/state.pristine" "$OURS/state"
  cp -a "$OURS/env.pristine/." "$OURS/ecu/"
}

# SWUpdate: signed sw-description + one zstd stream of the image (raw handler, installed directly).
SWU=$WORK/swupdate
if [ ! -s "$SWU/bundle.swu" ]; then
  log "SWUpdate bundle"
  rm -rf "$SWU"; mkdir -p "$SWU/tmp"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$SWU/key.pem" -out "$SWU/cert.pem" \
    -days 3650 -subj "/CN=install-bench" 2>/dev/null
  zstd -q -19 -T0 "$IMG" -o "$SWU/rootfs.ext4.zst"
  cat >"$SWU/sw-description" <<EOF
software =
{
    version = "2.0.0";
    hardware-compatibility: [ "1.0" ];
    images: (
        {
            filename = "rootfs.ext4.zst";
            type = "raw";
            compressed = "zstd";
            installed-directly = true;
            sha256 = "$(sha256sum "$SWU/rootfs.ext4.zst" | cut -c1-64)";
            device = "$SWU/target";
        }
    );
}
EOF
  openssl cms -sign -in "$SWU/sw-description" -out "$SWU/sw-description.sig" -signer "$SWU/cert.pem" \
    -inkey "$SWU/key.pem" -outform DER -nosmimecap -binary
  (cd "$SWU" && printf 'sw-description\nsw-description.sig\nrootfs.ext4.zst\n' | cpio -o -H crc >bundle.swu 2>/dev/null)
fi

# RAUC: plain bundles (this kernel has no device-mapper for verity), squashfs zstd and gzip.
RAUC=$WORK/rauc
if [ ! -s "$RAUC/zstd.raucb" ]; then
  log "RAUC bundles"
  rm -rf "$RAUC"; mkdir -p "$RAUC/content" "$RAUC/mnt" "$RAUC/bus"
  cp "$SWU/cert.pem" "$SWU/key.pem" "$RAUC/"
  ln "$IMG" "$RAUC/content/rootfs.ext4" 2>/dev/null || cp "$IMG" "$RAUC/content/rootfs.ext4"
  printf '[update]\ncompatible=install-bench\nversion=2.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.ext4\n' \
    >"$RAUC/content/manifest.raucm"
  rauc bundle --cert="$RAUC/cert.pem" --key="$RAUC/key.pem" --mksquashfs-args="-comp zstd" \
    "$RAUC/content" "$RAUC/zstd.raucb" >/dev/null 2>&1
  rauc bundle --cert="$RAUC/cert.pem" --key="$RAUC/key.pem" "$RAUC/content" "$RAUC/gzip.raucb" >/dev/null 2>&1
  cat >"$RAUC/system.conf" <<EOF
[system]
compatible=install-bench
bootloader=noop
statusfile=$RAUC/status
mountprefix=$RAUC/mnt

[keyring]
path=$RAUC/cert.pem

[slot.rootfs.0]
device=$RAUC/slotA
type=ext4
bootname=A

[slot.rootfs.1]
device=$RAUC/slotB
type=ext4
bootname=B
EOF
  cat >"$RAUC/bus/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$RAUC/bus/socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/> <allow own="*"/>
    <allow send_type="method_call"/> <allow send_type="signal"/> <allow send_type="method_return"/> <allow send_type="error"/>
    <allow receive_type="method_call"/> <allow receive_type="signal"/> <allow receive_type="method_return"/> <allow receive_type="error"/>
  </policy>
</busconfig>
EOF
fi
# RAUC is a D-Bus service: one private system bus for the whole run; each timed run starts the
# service, installs through it and stops it (about 36 ms of the time).
rm -f "$RAUC/bus/socket"
dbus-daemon --config-file="$RAUC/bus/bus.conf" --fork --print-pid >"$RAUC/bus/pid"
trap 'kill "$(cat "$RAUC/bus/pid")" 2>/dev/null || true' EXIT
export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$RAUC/bus/socket
rauc_install() { # BUNDLE
  rauc -c "$RAUC/system.conf" service --override-boot-slot=A >>"$WORK/rauc-service.log" 2>&1 &
  local pid=$!
  gdbus wait --system --timeout 10 de.pengutronix.rauc
  rauc -c "$RAUC/system.conf" install "$1" >/dev/null
  kill $pid; wait $pid || true
}
export -f rauc_install
export RAUC WORK

# Floors: one zstd stream of the image decoded, written and fsynced; with an OpenSSL SHA-256 of
# the decoded stream beside it (a FIFO, so the shell waits for openssl and counts its CPU).
FLOOR=$WORK/floor
mkdir -p "$FLOOR"
floor_hash() {
  rm -f "$FLOOR/fifo"; mkfifo "$FLOOR/fifo"
  openssl dgst -sha256 <"$FLOOR/fifo" >"$FLOOR/sha256" &
  zstd -q -dc "$SWU/rootfs.ext4.zst" | tee "$FLOOR/fifo" | dd of="$FLOOR/target" bs=1M conv=fsync,notrunc status=none
  wait
}
floor_nohash() {
  zstd -q -dc "$SWU/rootfs.ext4.zst" | dd of="$FLOOR/target" bs=1M conv=fsync,notrunc status=none
}
export -f floor_hash floor_nohash
export FLOOR SWU

# Targets: pre-filled 256 MiB plain files (as slots are).
for t in "$SWU/target" "$RAUC/slotA" "$RAUC/slotB" "$FLOOR/target"; do
  [ -s "$t" ] || head -c $SIZE /dev/urandom >"$t"
done

if [ -z "$ENGINES" ]; then
  for e in mbedtls openssl kernel; do
    probe=$("$AGENT" apply /nonexistent --output /dev/null --hash-engine $e 2>&1 || true)
    case $probe in *"is not available"*) ;; *) ENGINES="$ENGINES $e" ;; esac
  done
fi

# --- the runs ---------------------------------------------------------------------------------
# method name | bundle | command | target to compare | prefix of the target to compare
METHODS=()
for e in $ENGINES auto; do
  METHODS+=("ours-$e|$OURS/default.bundle|\"$AGENT\" --config \"$(config $e)\" install \"$OURS/default.bundle\" --no-reboot|$OURS/ecu/slot-B.img")
done
METHODS+=("ours-auto-1mib|$OURS/ops1m.bundle|\"$AGENT\" --config \"$(config auto)\" install \"$OURS/ops1m.bundle\" --no-reboot|$OURS/ecu/slot-B.img")
METHODS+=("ours-auto-format1|$OURS/format1.bundle|\"$AGENT\" --config \"$(config auto)\" install \"$OURS/format1.bundle\" --no-reboot|$OURS/ecu/slot-B.img")
METHODS+=("swupdate|$SWU/bundle.swu|cd \"$SWU\" && TMPDIR=\"$SWU/tmp\" swupdate -i bundle.swu -H BOARD:1.0 -k cert.pem && sync \"$SWU/target\"|$SWU/target")
METHODS+=("rauc-zstd|$RAUC/zstd.raucb|rauc_install \"$RAUC/zstd.raucb\"|$RAUC/slotB")
METHODS+=("rauc-gzip|$RAUC/gzip.raucb|rauc_install \"$RAUC/gzip.raucb\"|$RAUC/slotB")
METHODS+=("floor-sha256|$SWU/rootfs.ext4.zst|floor_hash|$FLOOR/target")
METHODS+=("floor-nohash|$SWU/rootfs.ext4.zst|floor_nohash|$FLOOR/target")

RES=$WORK/results
rm -rf "$RES"; mkdir -p "$RES"
IMG_SHA=$(sha256sum "$IMG" | cut -c1-64)
for run in $(seq "$RUNS"); do
  for m in "${METHODS[@]}"; do
    IFS='|' read -r name bundle cmd target <<<"$m"
    log "run $run/$RUNS $name"
    case $name in ours-*) reset_ecu ;; esac
    cat "$bundle" >/dev/null # in the page cache, as after a download
    sync
    s=$(date +%s%N)
    if /usr/bin/time -f "%U %S %M" -o "$RES/$name.time" bash -c "$cmd" >>"$WORK/output.log" 2>&1; then
      e=$(date +%s%N)
      got=$(head -c $SIZE "$target" | sha256sum | cut -c1-64)
      ok=ok; [ "$got" = "$IMG_SHA" ] || ok=WRONG
      read -r u sy rss <"$RES/$name.time"
      echo "$(((e - s) / 1000000)) $(echo "$u + $sy" | bc) $rss $ok" >>"$RES/$name.runs"
    else
      echo "failed: $name (see $WORK/output.log)" >&2
      echo "- - - failed" >>"$RES/$name.runs"
    fi
  done
done

# --- the table --------------------------------------------------------------------------------
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else print a[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$RES/$1.runs" | grep -v -- - | median; }
cpu() { awk -v v="$1" 'BEGIN {if (v == "-") print "-"; else printf "%.2f", v}'; }
secs() { awk -v v="$1" 'BEGIN {if (v == "-") print "-"; else printf "%.2f", v / 1000}'; }
mib() { awk -v v="$1" 'BEGIN {if (v == "-") print "-"; else printf "%.1f", v / 1024}'; }
mb() { awk -v v="$(stat -c %s "$1")" 'BEGIN {printf "%.1f", v / 1e6}'; }
status() { if grep -q failed "$RES/$1.runs"; then echo failed; elif grep -q WRONG "$RES/$1.runs"; then echo WRONG; else echo ok; fi; }
label() {
  case $1 in
    ours-auto-1mib) echo "ota-agent, auto engine, 1 MiB ops (zstd frames) instead of 2 MiB" ;;
    ours-auto-format1) echo "ota-agent, auto engine, format 1 bundle (whole-image hash, one read-back thread)" ;;
    ours-auto) echo "ota-agent, auto engine ($("$AGENT" apply /nonexistent --output /dev/null 2>&1 | sed -n 's/.*hash engine: \([a-z]*\).*/\1/p'))" ;;
    ours-*) echo "ota-agent, ${1#ours-} engine" ;;
    swupdate) echo "SWUpdate $(dpkg-query -W -f='${Version}' swupdate | cut -d+ -f1) \`-i\` + \`sync\` (wall includes its 1 s status poll)" ;;
    rauc-zstd) echo "RAUC $(dpkg-query -W -f='${Version}' rauc | cut -d- -f1), plain bundle, squashfs zstd" ;;
    rauc-gzip) echo "RAUC $(dpkg-query -W -f='${Version}' rauc | cut -d- -f1), plain bundle, squashfs gzip (its default)" ;;
    floor-sha256) echo "floor: \`zstd -dc\` + \`openssl dgst -sha256\` + \`dd conv=fsync\`" ;;
    floor-nohash) echo "floor without the hash: \`zstd -dc\` + \`dd conv=fsync\`" ;;
  esac
}
{
  echo "<!-- install-bench:begin (bench/install-bench.sh rewrites this section) -->"
  echo "## Full-image install"
  echo
  echo "Generated by \`bench/install-bench.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores,"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
  echo "Image: a 256 MiB ext4 file system ($USED MB used) made with \`mke2fs -d\` from the corpus's"
  echo "rootfs v2 tree (Debian 12 arm64 minimal + curl, libmbedtls14, zstd). Targets: pre-filled 256 MiB"
  echo "plain files; bundles in the page cache. Median of $RUNS runs, run in rounds (one run of every"
  echo "method per round); CPU = user + system of every process of the run; RSS = the largest"
  echo "process's peak (GNU time). Every target was compared with the image after every run."
  echo "What each checks: ota-agent the bundle's SHA-256 against signed TUF metadata (file://"
  echo "repository), each blob's SHA-256, and every byte of the slot read back from the storage after"
  echo "fsync (the default format 3: per 1 MiB chunk on every core; format 1: the whole image on one thread);"
  echo "SWUpdate the CMS signature of sw-description and the SHA-256 of the compressed stream (no"
  echo "read-back; its raw handler does not fsync, hence the \`sync\`); RAUC the CMS signature over"
  echo "the whole bundle file (no read-back)."
  echo
  echo "| method | wall s | CPU s | peak RSS MiB | bundle MB | result |"
  echo "|---|---|---|---|---|---|"
  for m in "${METHODS[@]}"; do
    IFS='|' read -r name bundle cmd target <<<"$m"
    echo "| $(label "$name") | $(secs "$(col "$name" 1)") | $(cpu "$(col "$name" 2)") | $(mib "$(col "$name" 3)") | $(mb "$bundle") | $(status "$name") |"
  done
  echo
  echo "<!-- install-bench:end -->"
} >"$WORK/section.md"
cat "$WORK/section.md"
# Replace the section in OUT (or append it), leaving the rest of the file as it is.
if [ -f "$OUT" ] && grep -q '<!-- install-bench:begin' "$OUT"; then
  awk -v sec="$WORK/section.md" '
    /<!-- install-bench:begin/ {while ((getline l < sec) > 0) print l; skip = 1; next}
    /<!-- install-bench:end/ {skip = 0; next}
    !skip {print}' "$OUT" >"$OUT.tmp"
else
  { [ -f "$OUT" ] && cat "$OUT" && echo; cat "$WORK/section.md"; } >"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
