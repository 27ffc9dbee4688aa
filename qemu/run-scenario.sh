#!/bin/bash
# Runs one A/B update scenario on the emulated ECU and checks it on the console log and on the disk.
# Usage: qemu/run-scenario.sh NAME [IMAGE_DIR]
#   NAME: good | delta | bad | powercut | hang
#   IMAGE_DIR: what qemu/build-image.sh made (default $OTA_QEMU_IMAGES or /work/qemu-work/out)
# Each scenario works on a sparse copy of the disk in IMAGE_DIR/scenario-NAME/ (console logs stay
# there), has a hard timeout per power-on, kills QEMU on exit and prints its timings.
# Environment: OTA_POWERCUT_DELAY_MS fixes the power-cut moment (default: random).
#   OTA_QEMU_HASH_ENGINE: the agent's hash_engine (default: kernel for good, and for bad with the
#   kernel's SHA-512 modules left out; openssl for delta; the image's "auto" for the others).
set -euo pipefail
NAME=${1:?usage: $0 good|delta|bad|powercut|hang [IMAGE_DIR]}
IMG=$(realpath "${2:-${OTA_QEMU_IMAGES:-/work/qemu-work/out}}")
. "$IMG/build.env"
case "$NAME" in good|bad|hang|powercut) REPO=${NAME/powercut/good} ;; *) REPO=$NAME ;; esac
[ -f "$IMG/repo-$REPO.img" ] || { echo "no $IMG/repo-$REPO.img (see qemu/build-image.sh)"; exit 2; }
DIR=$IMG/scenario-$NAME
rm -rf "$DIR"; mkdir -p "$DIR"
cp --sparse=always "$IMG/disk.img" "$IMG/flash1.img" "$DIR/"
UBOOT=${OTA_UBOOT_BIN:-/usr/lib/u-boot/qemu_arm64/u-boot.bin}
QPID=
T_START=$(date +%s.%N)
cleanup() { if [ -n "$QPID" ] && kill -0 "$QPID" 2>/dev/null; then kill -9 "$QPID" 2>/dev/null || true; wait "$QPID" 2>/dev/null || true; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "[$NAME +$(elapsed "$T_START")s] $*"; }
FAILS=0
check() { # description command...
  local what=$1; shift
  if "$@"; then say "PASS: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}

# marker_seen LOG MARKER: MARKER is a console text, or "write>=N%": the agent's first slot-write
# progress line of at least N percent (it prints a line per 10 % step reached, some get skipped).
marker_seen() {
  case "$2" in
    'write>='*%)
      local n=${2#write>=}; n=${n%\%}
      grep -aoE '^\[write   \] [0-9]+%' "$1" | tr -dc '0-9\n' | awk -v n="$n" '$1 >= n { f = 1 } END { exit !f }' ;;
    *) grep -qa -- "$2" "$1" ;;
  esac
}

# power_on LOG REPO TIMEOUT [MARKER]: boots the ECU until it powers itself off (QEMU exits 0).
# With MARKER: cuts the power (kill -9) DELAY_MS after MARKER appears on the console.
power_on() {
  local log=$1 repo=$2 limit=$3 marker=${4:-} t0 deadline cut_at=""
  t0=$(now)
  qemu-system-aarch64 -M virt -cpu cortex-a57 -smp 1 -m 512 -nographic -nic none -no-user-config \
    -bios "$UBOOT" \
    -drive if=pflash,format=raw,index=1,file="$DIR/flash1.img" \
    -drive if=none,file="$DIR/disk.img",format=raw,id=disk,cache=writeback \
    -device virtio-blk-pci,drive=disk,addr=0x2 \
    -drive if=none,file="$IMG/repo-$repo.img",format=raw,id=repo,readonly=on \
    -device virtio-blk-pci,drive=repo,addr=0x3 \
    -device i6300esb,addr=0x4 -action watchdog=reset \
    </dev/null >"$log" 2>&1 &
  QPID=$!
  deadline=$(awk -v a="$t0" -v l="$limit" 'BEGIN { printf "%d", a + l }')
  while kill -0 "$QPID" 2>/dev/null; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      say "TIMEOUT after ${limit}s: killing QEMU"; cleanup; QPID=; return 1
    fi
    if [ -n "$marker" ] && [ -z "$cut_at" ] && marker_seen "$log" "$marker"; then
      cut_at=$(awk -v a="$(now)" -v d="$CUT_DELAY_MS" 'BEGIN { printf "%.3f", a + d / 1000 }')
      say "marker '$marker' seen; power cut in ${CUT_DELAY_MS} ms"
    fi
    if [ -n "$cut_at" ] && awk -v a="$(now)" -v c="$cut_at" 'BEGIN { exit !(a >= c) }'; then
      kill -9 "$QPID"; wait "$QPID" 2>/dev/null || true; QPID=
      say "POWER CUT (QEMU killed) $(elapsed "$t0")s after power-on"
      return 0
    fi
    sleep 0.1
  done
  wait "$QPID"; local rc=$?; QPID=
  say "powered off by the guest (QEMU rc=$rc) after $(elapsed "$t0")s"
  return $rc
}

# put_data_file NAME TEXT: leaves a file in the data partition (/data/NAME) of this scenario's
# disk, where the guest's init reads its settings from.
put_data_file() {
  local part=$DIR/data.part
  dd if="$DIR/disk.img" of="$part" bs=512 skip="$DATA_SECTOR" \
    count="${DATA_SECTORS:?build.env has no DATA_SECTORS: rebuild the image}" status=none
  echo "$2" > "$DIR/$1"
  debugfs -w -R "write $DIR/$1 $1" "$part" >/dev/null 2>&1
  # debugfs exits 0 whatever happened: read the file back.
  [ "$(debugfs -R "cat $1" "$part" 2>/dev/null)" = "$2" ] || { echo "cannot write /data/$1"; exit 2; }
  dd if="$part" of="$DIR/disk.img" bs=512 seek="$DATA_SECTOR" conv=notrunc,sparse status=none
  rm -f "$part"
}
case "$NAME" in good|bad) ENGINE=kernel ;; delta) ENGINE=openssl ;; *) ENGINE=auto ;; esac
ENGINE=${OTA_QEMU_HASH_ENGINE:-$ENGINE}
ENGINE_LOG="hash engine: $ENGINE (configured; self-test passed)"
if [ "$AGENT_MODE" != standin ] && [ "$ENGINE" != auto ]; then
  put_data_file hash_engine "$ENGINE"
  # An ECU whose kernel offers SHA-256 but not SHA-512: the agent takes SHA-512 from mbedTLS.
  if [ "$NAME" = bad ] && [ "$ENGINE" = kernel ]; then
    put_data_file skip_modules "sha512_generic sha512-arm64 sha512-ce"
    ENGINE_LOG="hash engine: kernel, SHA-512 through mbedtls (the kernel's crypto API has no sha512"
  fi
fi

# Host-side views of the disk after a run.
env_get() { # VAR -> value from partition 4, read with libubootenv's fw_printenv
  printf '%s 0x%x 0x4000\n' "$DIR/disk.img" $((ENV_SECTOR * 512)) > "$DIR/fw_env.config"
  fw_printenv -c "$DIR/fw_env.config" -n "$1" 2>/dev/null
}
slot_sha() { # A|B
  local s=$SLOT_A_SECTOR; [ "$1" = B ] && s=$SLOT_B_SECTOR
  dd if="$DIR/disk.img" bs=1M iflag=skip_bytes,count_bytes skip=$((s * 512)) count="$SLOT_BYTES" status=none | sha256sum | cut -d' ' -f1
}
boots() { grep -a -o 'OTA-BOOT slot=[AB] version=[0-9]*' "$1" | tr '\n' ',' ; }
count() { grep -a -c -- "$2" "$1" || true; }
has() { grep -qa -- "$2" "$1"; }
after_last() { # LOG PATTERN: the console from the last line matching PATTERN on
  awk -v p="$2" 'index($0, p) { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' "$1"
}
eq() { [ "$1" = "$2" ] || { echo "    expected '$2', got '$1'"; return 1; }; }

expect_committed_b() { # the state after a successful update to version 2
  local log=$1
  check "slot B booted version 2 and its boot check passed" has "$log" "OTA-BOOT slot=B version=2"
  check "boot check on B passed" grep -qa 'OTA-BOOT-CHECK rc=0' <(after_last "$log" 'OTA-BOOT slot=B version=2')
  check "the ECU went idle on B (nothing more to install)" has "$log" "OTA-IDLE"
  check "BOOT_ORDER puts B first" eq "$(env_get BOOT_ORDER | cut -d' ' -f1)" B
  check "BOOT_B_LEFT restored to 3 (committed)" eq "$(env_get BOOT_B_LEFT)" 3
  check "slot B holds version 2 (sha256)" eq "$(slot_sha B)" "$SHA_V2"
  check "slot A still holds version 1 (sha256)" eq "$(slot_sha A)" "$SHA_V1"
}

expect_rolled_back() { # LOG of the run, variant sha
  local log=$1 sha=$2
  check "B was tried exactly 3 times" eq "$(count "$log" 'OTA-BOOT slot=B')" 3
  check "U-Boot fell back to A after B's tries" grep -qa "OTA: booting slot A" <(after_last "$log" 'OTA-BOOT slot=B')
  check "last boot is A version 1" eq "$(boots "$log" | tr ',' '\n' | grep . | tail -1)" "OTA-BOOT slot=A version=1"
  check "the agent on A reported the rollback" grep -qaiE 'rollback|rolled back' <(after_last "$log" 'OTA-BOOT slot=A version=1')
  check "the ECU went idle on A" has "$log" "OTA-IDLE"
  check "BOOT_B_LEFT is 0" eq "$(env_get BOOT_B_LEFT)" 0
  check "BOOT_A_LEFT is 3 (A marked good)" eq "$(env_get BOOT_A_LEFT)" 3
  check "slot A still holds version 1 (sha256)" eq "$(slot_sha A)" "$SHA_V1"
  check "slot B holds the rejected release (sha256)" eq "$(slot_sha B)" "$sha"
}

expect_no_retry() { # a further power-on: A, no install, idle
  local log=$DIR/console-again.log
  power_on "$log" "$1" 120 || true
  check "next power-on boots A version 1 only" eq "$(boots "$log")" "OTA-BOOT slot=A version=1,"
  check "the rejected version is not installed again" eq "$(slot_sha B)" "$2"
  check "next power-on goes idle" has "$log" "OTA-IDLE"
}

case "$NAME" in
good|delta)
  power_on "$DIR/console.log" "$NAME" 240 || true
  if [ "$AGENT_MODE" != standin ]; then
    kind="full image"; [ "$NAME" = delta ] && kind="delta"
    check "the agent chose the $kind bundle" grep -qa "update available: .*, $kind)" "$DIR/console.log"
    [ "$ENGINE" = auto ] || check "the agent hashed with the $ENGINE engine" has "$DIR/console.log" "$ENGINE_LOG"
    check "the agent committed version 2 on B" has "$DIR/console.log" "version 2 committed: slot B marked good"
  fi
  check "first boot is A version 1, then B version 2" eq "$(boots "$DIR/console.log")" \
    "OTA-BOOT slot=A version=1,OTA-BOOT slot=B version=2,"
  expect_committed_b "$DIR/console.log" ;;
bad)
  power_on "$DIR/console.log" bad 400 || true
  check "B's health check failed" grep -qaE "health check failed on slot B|health: release self-test failed" "$DIR/console.log"
  [ "$AGENT_MODE" = standin ] || [ "$ENGINE" = auto ] || check "the agent hashed with the $ENGINE engine" has "$DIR/console.log" "$ENGINE_LOG"
  expect_rolled_back "$DIR/console.log" "$SHA_V2_BAD"
  expect_no_retry bad "$SHA_V2_BAD" ;;
hang)
  power_on "$DIR/console.log" hang 500 || true
  check "B hung during start-up (3 times)" eq "$(count "$DIR/console.log" 'app: hanging')" 3
  check "no boot check ran on B (the watchdog reset it)" eq \
    "$(sed -n '/OTA-BOOT slot=B/,/OTA-BOOT slot=A/p' "$DIR/console.log" | grep -ac 'OTA-BOOT-CHECK')" 0
  expect_rolled_back "$DIR/console.log" "$SHA_V2_HANG"
  expect_no_retry hang "$SHA_V2_HANG" ;;
powercut)
  # The cut lands at a random point of the slot write: after the agent's first progress line at or
  # above a random 10..50 %, plus a random 0..99 ms (the stand-in has no progress lines: 0..2499 ms
  # after start). The rest of the write with the accelerated hash engine can take well under
  # 300 ms, so later or longer cuts would often land after it.
  CUT_DELAY_MS=${OTA_POWERCUT_DELAY_MS:-$(( RANDOM % 100 ))}
  marker=$INSTALL_MARKER
  if [ "$AGENT_MODE" = standin ]; then
    CUT_DELAY_MS=${OTA_POWERCUT_DELAY_MS:-$(( RANDOM % 2500 ))}
  else
    marker="write>=${OTA_POWERCUT_PERCENT:-$(( (RANDOM % 5 + 1) * 10 ))}%"
  fi
  say "power cut ${CUT_DELAY_MS} ms after '$marker'"
  power_on "$DIR/console-cut.log" good 240 "$marker" || true
  check "the power was cut while the slot was being written" marker_seen "$DIR/console-cut.log" "$marker"
  check "the slot write had not finished (no end-to-end verification)" \
    bash -c "! grep -qa 'verified end to end' '$DIR/console-cut.log'"
  check "the power was cut before B ever booted" eq "$(boots "$DIR/console-cut.log")" "OTA-BOOT slot=A version=1,"
  say "after the cut: BOOT_ORDER='$(env_get BOOT_ORDER)' BOOT_B_LEFT=$(env_get BOOT_B_LEFT)"
  power_on "$DIR/console.log" good 300 || true
  check "after the power cut the ECU comes up on A version 1" eq \
    "$(boots "$DIR/console.log" | cut -d, -f1)" "OTA-BOOT slot=A version=1"
  check "then the install completes and B boots version 2" eq "$(boots "$DIR/console.log")" \
    "OTA-BOOT slot=A version=1,OTA-BOOT slot=B version=2,"
  # Resuming (journal) or restarting are both correct; say which one happened.
  say "install after the cut: $(grep -aoE 'resumed after [0-9]+ completed operations' "$DIR/console.log" || echo 'restarted from the beginning')"
  expect_committed_b "$DIR/console.log" ;;
*) echo "unknown scenario $NAME"; exit 2 ;;
esac

say "TIMING: scenario $NAME took $(elapsed "$T_START")s ($FAILS failed checks)"
[ "$FAILS" -eq 0 ]
