# Sourced by build-image.sh: the fleet side of the emulated ECU, done with the real ota-publish.
# Needs PUBLISH (host ota-publish), OUT, WORK.
OTA_HARDWARE_ID=qemu-virt-aarch64
# The console line with which the agent starts writing a slot (see agent/update/staging.cpp).
AGENT_INSTALL_MARKER='writing slot B ('

publish_init() { # KEYS_DIR: one fleet repository (keys + root) shared by every scenario repository
  local dir=$1
  if [ ! -f "$dir/metadata/root.json" ]; then
    rm -rf "$dir"
    "$PUBLISH" init --repo "$dir" --scheme ecdsa --expires-days 365 >/dev/null
  fi
}

publish_guest_config() { # ROOTFS_DIR VERSION: the agent's configuration inside a slot image
  local r=$1 version=$2
  cp "$OUT/keys/metadata/root.json" "$r/etc/ota/root.json"
  cat > "$r/etc/ota/agent.json" <<JSON
{
  "hardware_id": "$OTA_HARDWARE_ID",
  "state_dir": "/data/ota",
  "trusted_root": "/etc/ota/root.json",
  "metadata_url": "file:///repo/metadata/",
  "targets_url": "file:///repo/targets/",
  "installed_version": $version,
  "slots": {"A": "/dev/vda2", "B": "/dev/vda3"},
  "bootloader": {"type": "uboot", "fw_env_config": "/etc/fw_env.config", "tries": 3},
  "health_check": ["/usr/bin/ota-health"],
  "hash_engine": "auto"
}
JSON
}

publish_repo() { # OUT_DIR NEW_IMAGE VERSION [OLD_IMAGE:OLD_VERSION]: metadata/ and targets/ only
  local d=$1 img=$2 version=$3 from=${4:-} tmp=$WORK/publish-$(basename "$1")
  rm -rf "$tmp"; cp -a "$OUT/keys" "$tmp"
  if [ -n "$from" ]; then
    "$PUBLISH" release --repo "$tmp" --image "$img" --version "$version" \
      --hardware-id "$OTA_HARDWARE_ID" --from "$from" >/dev/null
  else
    "$PUBLISH" release --repo "$tmp" --image "$img" --version "$version" \
      --hardware-id "$OTA_HARDWARE_ID" >/dev/null
  fi
  cp -a "$tmp/metadata" "$tmp/targets" "$d/" # never the keys
  rm -rf "$tmp"
}
