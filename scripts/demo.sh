#!/usr/bin/env bash
# The main job, end to end on a simulated ECU: installs what it needs, builds, publishes a signed
# repository served by nginx on 127.0.0.1, and updates the ECU from slot A to slot B. Then a
# vehicle of three ECUs under Uptane (scripts/demo-uptane.sh in WORK_DIR/uptane).
#   scripts/demo.sh [WORK_DIR]
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/ota-demo}
build="$repo_root/build/demo"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing packages"
"$repo_root/scripts/install-deps.sh"

step "Building (CMake, Release)"
cmake -S "$repo_root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DOTA_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target ota-agent ota-publish ota-sim ota-secondary
bin="$build/bin"

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"
port=$((20000 + RANDOM % 20000))
trap '"$repo_root/scripts/serve-repo.sh" stop "$work/nginx"' EXIT

step "Fleet backend: firmware images v1 (in the car) and v2 (new release)"
"$bin/ota-sim" make-image --version 1 --size $((32 << 20)) --seed 42 v1.img
"$bin/ota-sim" make-image --version 2 --size $((32 << 20)) --seed 42 v2.img
ls -l v1.img v2.img

step "Fleet backend: signed TUF repository with a full and a delta bundle of v2"
"$bin/ota-publish" init --repo repo
"$bin/ota-publish" release --repo repo --image v2.img --version 2 --hardware-id demo-ecu --from v1.img:1
ls -l repo/targets/demo-ecu

step "Serving the repository with nginx on 127.0.0.1:$port"
"$repo_root/scripts/serve-repo.sh" start repo "$port" nginx

step "The ECU: slot A runs v1"
"$bin/ota-sim" create --dir ecu --slot-size $((64 << 20)) --image-a v1.img
# The agent drives the simulated ECU with the backends it uses on a real one: the U-Boot
# environment through fw_env.config, the slots as block devices (here files), the booted slot
# from the kernel command line and the boot id (both rewritten by the simulator at each
# power-on), and a reboot command (here the simulator records the request).
cat >agent.json <<JSON
{
  "hardware_id": "demo-ecu",
  "state_dir": "state",
  "trusted_root": "repo/metadata/1.root.json",
  "metadata_url": "http://127.0.0.1:$port/metadata/",
  "targets_url": "http://127.0.0.1:$port/targets/",
  "installed_version": 1,
  "slots": {"A": "ecu/slot-A.img", "B": "ecu/slot-B.img"},
  "bootloader": {"type": "uboot", "fw_env_config": "ecu/fw_env.config", "cmdline": "ecu/cmdline",
                 "boot_id": "ecu/boot_id", "tries": 3},
  "reboot_command": ["$bin/ota-sim", "reboot", "--dir", "$work/ecu"],
  "health_check": ["$bin/ota-sim", "health", "--dir", "$work/ecu"]
}
JSON
"$bin/ota-agent" --config agent.json boot-check
"$bin/ota-agent" --config agent.json status

step "Agent: check, download, verify, write slot B, switch, reboot"
"$bin/ota-agent" --config agent.json update

step "Power-on: the boot script picks slot B (boot counting)"
"$bin/ota-sim" boot --dir ecu

step "Agent after boot: health check, commit"
"$bin/ota-agent" --config agent.json boot-check

step "Final state"
"$bin/ota-agent" --config agent.json status
"$bin/ota-sim" state --dir ecu
size=$(stat -c %s v2.img)
if cmp -s <(head -c "$size" ecu/slot-B.img) v2.img; then
    echo "slot B holds exactly v2.img ($(sha256sum v2.img | cut -c1-16)...): update complete"
else
    echo "slot B does not match v2.img" >&2
    exit 1
fi

step "Next: a vehicle of three ECUs updated under Uptane (director + image repository)"
"$repo_root/scripts/serve-repo.sh" stop "$work/nginx"
BIN="$bin" "$repo_root/scripts/demo-uptane.sh" "$work/uptane"
