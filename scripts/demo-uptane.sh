#!/usr/bin/env bash
# A vehicle updated under Uptane, on 127.0.0.1 only: an image repository and a director (both made
# by ota-publish, served by nginx), a primary ECU (ota-agent with "uptane" in its configuration)
# and two secondary ECUs (ota-secondary: one full, one partial verification), each a simulated A/B
# ECU. All three go from version 1 to 2; the director verifies the vehicle version manifest.
#   scripts/demo-uptane.sh [WORK_DIR]      (scripts/demo.sh runs it after its own demo)
# BIN=DIR skips installing and building (the folder holding ota-agent, ota-secondary, ...).
set -euo pipefail
repo_root=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-/tmp/ota-demo-uptane}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -z "${BIN:-}" ]; then
    step "Installing packages"
    "$repo_root/scripts/install-deps.sh"
    step "Building (CMake, Release)"
    cmake -S "$repo_root" -B "$repo_root/build/demo" -G Ninja -DCMAKE_BUILD_TYPE=Release \
        -DOTA_BUILD_TESTS=OFF >/dev/null
    cmake --build "$repo_root/build/demo" --target ota-agent ota-publish ota-sim ota-secondary
    BIN="$repo_root/build/demo/bin"
fi
bin=$BIN

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
cd "$work"
chmod 755 "$work" # nginx's workers may run as another user
port=$((20000 + RANDOM % 20000)) # repositories; +1 the director's receiver; +2, +3 secondaries
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    "$repo_root/scripts/serve-repo.sh" stop "$work/nginx"
    [ -s "$work/receiver/nginx.pid" ] && kill "$(cat "$work/receiver/nginx.pid")" 2>/dev/null
    true
}
trap cleanup EXIT

step "Fleet backend: image repository with version 2 for three kinds of ECU"
"$bin/ota-sim" make-image --version 1 --size $((4 << 20)) --seed 7 v1.img >/dev/null
"$bin/ota-sim" make-image --version 2 --size $((4 << 20)) --seed 7 v2.img >/dev/null
"$bin/ota-publish" init --repo www/image >/dev/null
"$bin/ota-publish" release --repo www/image --image v2.img --version 2 --hardware-id head-unit
"$bin/ota-publish" release --repo www/image --image v2.img --version 2 --hardware-id brake-ecu \
    --from v1.img:1
"$bin/ota-publish" release --repo www/image --image v2.img --version 2 --hardware-id door-ecu

step "Director: the repository of vehicle VIN-DEMO and its ECUs"
"$bin/ota-publish" director init --repo www/director --vehicle VIN-DEMO
"$bin/ota-publish" keygen --key-type ecdsa --out primary
"$bin/ota-publish" director add-ecu --repo www/director --serial head-1 --hardware-id head-unit \
    --public-key primary.pub --key-scheme ecdsa --primary
cp www/image/metadata/1.root.json image-root.json
cp www/director/metadata/1.root.json director-root.json

step "Secondaries: brake-1 (full verification) and door-1 (partial), slot A runs v1"
secondaries_json=""
n=2
for ecu in brake-1:brake-ecu:full door-1:door-ecu:partial; do
    IFS=: read -r serial hw mode <<<"$ecu"
    mkdir -p "$serial"
    "$bin/ota-sim" create --dir "$serial/ecu" --slot-size $((8 << 20)) --image-a v1.img >/dev/null
    "$bin/ota-publish" keygen --key-type ecdsa --out "$serial/ecu" >/dev/null
    image_root=""
    [ "$mode" = full ] && image_root="\"image_root\": \"$work/image-root.json\","
    cat >"$serial/secondary.json" <<JSON
{
  "ecu_serial": "$serial", "hardware_id": "$hw", "verification": "$mode", "vehicle_id": "VIN-DEMO",
  "listen": "127.0.0.1:$((port + n))", "key": "$work/$serial/ecu.key",
  "state_dir": "$work/$serial/state", "director_root": "$work/director-root.json", $image_root
  "installed_version": 1,
  "slots": {"A": "$work/$serial/ecu/slot-A.img", "B": "$work/$serial/ecu/slot-B.img"},
  "bootloader": {"fw_env_config": "$work/$serial/ecu/fw_env.config",
                 "booted_slot_file": "$work/$serial/ecu/booted-slot"},
  "reboot_command": ["$bin/ota-sim", "reboot", "--dir", "$work/$serial/ecu"],
  "health_check": ["$bin/ota-sim", "health", "--dir", "$work/$serial/ecu"],
  "timeout_s": 30
}
JSON
    "$bin/ota-secondary" --config "$serial/secondary.json" info >"$serial/info.json"
    "$bin/ota-publish" director add-ecu --repo www/director --info "$serial/info.json"
    secondaries_json+="${secondaries_json:+,}
    {\"ecu_serial\": \"$serial\", \"hardware_id\": \"$hw\", \"address\": \"127.0.0.1:$((port + n))\",
     \"verification\": \"$mode\", \"public_key_file\": \"$serial/ecu.pub\",
     \"key_scheme\": \"ecdsa-sha2-nistp256\"}"
    n=$((n + 1))
done

step "Director: assign version 2 to every ECU (brake-1 gets the delta from v1)"
"$bin/ota-publish" director assign --repo www/director --image-repo www/image \
    --serial head-1 --target head-unit/rootfs-2.full.bundle
"$bin/ota-publish" director assign --repo www/director --image-repo www/image \
    --serial brake-1 --target brake-ecu/rootfs-2.from-1.delta.bundle
"$bin/ota-publish" director assign --repo www/director --image-repo www/image \
    --serial door-1 --target door-ecu/rootfs-2.full.bundle

step "Serving both repositories with nginx on 127.0.0.1:$port, the manifest receiver on :$((port + 1))"
"$repo_root/scripts/serve-repo.sh" start www "$port" nginx
# The director's manifest endpoint: nginx keeps each POSTed body as a file (a real backend
# verifies it on receipt; here `ota-publish director manifest` does, below).
mkdir -p receiver/bodies
cat >receiver/nginx.conf <<CONF
worker_processes 1;
pid $work/receiver/nginx.pid;
error_log $work/receiver/error.log warn;
events { worker_connections 16; }
http {
    access_log off;
    client_body_temp_path $work/receiver/bodies;
    proxy_temp_path $work/receiver/proxy;
    fastcgi_temp_path $work/receiver/fastcgi;
    uwsgi_temp_path $work/receiver/uwsgi;
    scgi_temp_path $work/receiver/scgi;
    server {
        listen 127.0.0.1:$((port + 1));
        location = /manifest {
            client_body_in_file_only on;
            client_max_body_size 1m;
            proxy_pass http://127.0.0.1:$((port + 1))/stored;
        }
        location = /stored { return 200 "stored\n"; }
    }
}
CONF
nginx -c "$work/receiver/nginx.conf" -p "$work/receiver" -e "$work/receiver/error.log"

start_secondary() {
    "$bin/ota-secondary" --config "$1/secondary.json" serve >>"$1/log" 2>&1 &
    pids+=($!)
    eval "pid_${1//-/_}=$!"
}
wait_for_port() {
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
start_secondary brake-1
start_secondary door-1
wait_for_port $((port + 2))
wait_for_port $((port + 3))

step "Primary head-1: ota-agent, slot A runs v1; its configuration names the Uptane one"
"$bin/ota-sim" create --dir ecu --slot-size $((8 << 20)) --image-a v1.img >/dev/null
cat >uptane.json <<JSON
{
  "vehicle_id": "VIN-DEMO",
  "primary": {"ecu_serial": "head-1", "hardware_id": "head-unit", "key": "primary.key"},
  "state_dir": "state/uptane",
  "repositories": {
    "director": {"metadata_url": "http://127.0.0.1:$port/director/metadata/",
                 "trusted_root": "director-root.json"},
    "image": {"metadata_url": "http://127.0.0.1:$port/image/metadata/",
              "targets_url": "http://127.0.0.1:$port/image/targets/",
              "trusted_root": "image-root.json"}
  },
  "manifest_url": "http://127.0.0.1:$((port + 1))/manifest",
  "secondaries": [$secondaries_json
  ],
  "secondary_timeout_s": 30
}
JSON
cat >agent.json <<JSON
{
  "hardware_id": "head-unit",
  "state_dir": "state",
  "uptane": "uptane.json",
  "installed_version": 1,
  "slots": {"A": "ecu/slot-A.img", "B": "ecu/slot-B.img"},
  "bootloader": {"type": "uboot", "fw_env_config": "ecu/fw_env.config", "cmdline": "ecu/cmdline",
                 "boot_id": "ecu/boot_id", "tries": 3},
  "reboot_command": ["$bin/ota-sim", "reboot", "--dir", "$work/ecu"],
  "health_check": ["$bin/ota-sim", "health", "--dir", "$work/ecu"]
}
JSON
cat uptane.json

step "Primary: verify both repositories, write its slot B, stage both secondaries, switch all"
"$bin/ota-agent" --config agent.json update

for serial in brake-1 door-1; do
    echo "-- $serial (ota-secondary's log)"
    cat "$serial/log"
done
boot_order() { fw_printenv -n BOOT_ORDER -c "$1/fw_env.config"; }
printf '%-8s BOOT_ORDER=%s\n' head-1 "$(boot_order ecu)" brake-1 "$(boot_order brake-1/ecu)" \
    door-1 "$(boot_order door-1/ecu)"

step "Power-on of every ECU: each boots slot B, checks its health and commits"
for serial in brake-1 door-1; do
    pid_var="pid_${serial//-/_}"
    kill "${!pid_var}"
    wait "${!pid_var}" 2>/dev/null || true
    "$bin/ota-sim" boot --dir "$serial/ecu"
    start_secondary "$serial"
done
"$bin/ota-sim" boot --dir ecu
"$bin/ota-agent" --config agent.json boot-check
wait_for_port $((port + 2))
wait_for_port $((port + 3))

step "Primary's next cycle: nothing to install; the vehicle version manifest goes to the director"
"$bin/ota-agent" --config agent.json update

step "Director: verify the manifest it received (signatures, counters, versions)"
manifest=$(ls -t receiver/bodies/* | head -n 1)
"$bin/ota-publish" director manifest --repo www/director --manifest "$manifest"
for serial in head-1 brake-1 door-1; do
    dir=ecu
    [ "$serial" != head-1 ] && dir="$serial/ecu"
    size=$(stat -c %s v2.img)
    if [ "$(cat "$dir/booted-slot" 2>/dev/null || sed -n 's/.*rauc.slot=\([AB]\).*/\1/p' "$dir/cmdline")" = B ] &&
        cmp -s <(head -c "$size" "$dir/slot-B.img") v2.img; then
        echo "$serial runs slot B = v2"
    else
        echo "$serial does not run v2 in slot B" >&2
        exit 1
    fi
done
echo "vehicle VIN-DEMO updated: every ECU runs version 2, the director verified the manifest"
