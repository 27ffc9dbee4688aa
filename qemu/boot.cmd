# RAUC-style A/B boot counting for the emulated ECU (see docs/boot-counting.md and docs/qemu.md).
# The shared boot state lives in GPT partition 4 of virtio disk 0: a single-copy U-Boot binary
# environment of 0x4000 bytes (CRC-32 + name=value entries), the same area Linux reaches through
# /etc/fw_env.config "/dev/vda4 0x0 0x4000". env import/export with a variable list keep ONLY the
# listed variables, so every variable Linux must keep is listed in ota_vars below.
setenv ota_vars "BOOT_ORDER BOOT_A_LEFT BOOT_B_LEFT"
setenv ota_env_size 0x4000
setenv ota_env_blocks 0x20
setenv ota_env_addr 0x4f000000
setenv ota_default_tries 3

virtio scan
part start virtio 0 4 ota_env_start
setenv BOOT_ORDER
setenv BOOT_A_LEFT
setenv BOOT_B_LEFT
if virtio read ${ota_env_addr} ${ota_env_start} ${ota_env_blocks} && env import -c ${ota_env_addr} ${ota_env_size} ${ota_vars}; then
  echo "OTA: boot state read from the environment partition"
else
  echo "OTA: no valid boot state, using defaults"
fi
# Missing variables mean the defaults, exactly as the agent's U-Boot backend reads them.
test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"
test -n "${BOOT_A_LEFT}" || setenv BOOT_A_LEFT ${ota_default_tries}
test -n "${BOOT_B_LEFT}" || setenv BOOT_B_LEFT ${ota_default_tries}
echo "OTA: BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"

# The first slot in BOOT_ORDER with tries left is booted; its counter is decremented and saved
# BEFORE booting, so a slot that never reaches mark-good burns its tries and falls back by itself.
setenv ota_slot
setenv ota_part
for s in ${BOOT_ORDER}; do
  if test -n "${ota_slot}"; then
    true
  elif test "${s}" = "A"; then
    if test ${BOOT_A_LEFT} -gt 0; then
      setexpr BOOT_A_LEFT ${BOOT_A_LEFT} - 1
      setenv ota_slot A
      setenv ota_part 2
    fi
  elif test "${s}" = "B"; then
    if test ${BOOT_B_LEFT} -gt 0; then
      setexpr BOOT_B_LEFT ${BOOT_B_LEFT} - 1
      setenv ota_slot B
      setenv ota_part 3
    fi
  fi
done

if test -z "${ota_slot}"; then
  # No slot has tries left: restore every slot's tries (BOOT_ORDER stays) and start over.
  echo "OTA: no slot in BOOT_ORDER has tries left, resetting tries to ${ota_default_tries}"
  setenv BOOT_A_LEFT ${ota_default_tries}
  setenv BOOT_B_LEFT ${ota_default_tries}
  env export -c -s ${ota_env_size} ${ota_env_addr} ${ota_vars}
  virtio write ${ota_env_addr} ${ota_env_start} ${ota_env_blocks}
  reset
fi

env export -c -s ${ota_env_size} ${ota_env_addr} ${ota_vars}
virtio write ${ota_env_addr} ${ota_env_start} ${ota_env_blocks}
echo "OTA: booting slot ${ota_slot} (partition ${ota_part}), BOOT_ORDER=${BOOT_ORDER} BOOT_A_LEFT=${BOOT_A_LEFT} BOOT_B_LEFT=${BOOT_B_LEFT}"

if load virtio 0:${ota_part} ${kernel_addr_r} /boot/Image && load virtio 0:${ota_part} ${ramdisk_addr_r} /boot/initrd.img; then
  setenv bootargs "console=ttyAMA0 root=/dev/vda${ota_part} ro panic=1 rauc.slot=${ota_slot}"
  booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}
fi
# Unloadable or unbootable slot: it costs this try; the next reset moves on.
echo "OTA: slot ${ota_slot} did not boot"
reset
