#!/bin/bash
# CI entry point for the emulated ECU: builds the image once, runs every scenario with a hard
# timeout, prints a timing table. Exit status 0 only if the image built and every scenario passed.
# Usage: qemu/ci-qemu.sh [OUT_DIR] [SCENARIO...]
#   OUT_DIR defaults to $OTA_QEMU_IMAGES or ./qemu-out; scenarios default to all of them.
#   OTA_SKIP_IMAGE_BUILD=1 reuses an image already in OUT_DIR.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(realpath -m "${1:-${OTA_QEMU_IMAGES:-$PWD/qemu-out}}")
shift || true
SCENARIOS=${*:-good delta bad powercut hang}
SCENARIO_TIMEOUT=${OTA_QEMU_SCENARIO_TIMEOUT:-1200}

fmt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
t0=$(date +%s.%N)
if [ "${OTA_SKIP_IMAGE_BUILD:-0}" != 1 ]; then
  if ! "$HERE/build-image.sh" "$OUT"; then echo "ci-qemu: image build failed"; exit 1; fi
fi
t_image=$(fmt "$t0" "$(date +%s.%N)")
. "$OUT/build.env"
summary="image build: ${t_image}s (agent: $AGENT_MODE, kernel $KERNEL_VERSION)"
failed=0
for s in $SCENARIOS; do
  if [ "$s" = delta ] && [ ! -f "$OUT/repo-delta.img" ]; then
    summary="$summary
scenario delta: skipped (image built with OTA_QEMU_DELTA=0 or the stand-in agent)"
    continue
  fi
  ts=$(date +%s.%N)
  timeout --kill-after=10 "$SCENARIO_TIMEOUT" "$HERE/run-scenario.sh" "$s" "$OUT"
  rc=$?
  result=PASS; [ $rc -eq 0 ] || { result="FAIL (rc=$rc)"; failed=$((failed + 1)); }
  summary="$summary
scenario $s: $result in $(fmt "$ts" "$(date +%s.%N)")s"
done
echo "==== qemu scenarios ===="
echo "$summary"
echo "total: $(fmt "$t0" "$(date +%s.%N)")s, $failed failed"
[ $failed -eq 0 ]
