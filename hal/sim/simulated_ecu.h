// A simulated A/B ECU in a directory, for tests and the demo. The agent drives it with its real
// backends, as it drives a real ECU:
//   slot-A.img, slot-B.img   the two slots (plain files of slot_size bytes): the agent's "slots"
//   uboot.env                the U-Boot environment, same binary format as on a real ECU
//   fw_env.config            where that environment lives (the agent's bootloader.fw_env_config;
//                            fw_printenv -c works on it too)
//   cmdline                  the kernel command line of the last power-on, with rauc.slot=X
//                            (the agent's bootloader.cmdline, as /proc/cmdline on an ECU)
//   boot_id                  a new random id at each power-on (the agent's bootloader.boot_id,
//                            as /proc/sys/kernel/random/boot_id)
//   booted-slot              the slot the last power-on booted ("A\n"), for scripts and tests
//   reboot-requested         present when the agent asked for a reboot (its reboot_command is
//                            `ota-sim reboot --dir DIR`)
// power_on() runs the same boot-counting algorithm as the U-Boot boot script (see
// docs/boot-counting.md), including the resets a panicking slot causes.
#pragma once
#include "hal/boot_control.h"
#include "hal/sim/boot_script.h"
#include "hal/sim/sim_image.h"
#include "hal/uboot_boot_control.h"
#include "hal/uboot_env.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ota::hal::sim {

// Default environment size of the simulator (same as the QEMU image's 0x4000).
constexpr uint64_t kSimEnvSize = 0x4000;

struct BootOutcome {
    std::string slot;             // the slot that came up
    bool healthy = false;         // its image says health=ok
    int power_ons = 0;            // resets included
    std::vector<std::string> log; // what happened, one line per step
    BootState state;              // environment after the boot
};

class SimulatedEcu {
public:
    // Creates the directory layout with image_a in slot A (zero-padded to slot_size), an empty
    // slot B, the default environment (BOOT_ORDER "A B", 3 tries each) and powers the ECU on
    // once, so it starts out booted from A exactly as the boot script would leave it.
    static SimulatedEcu create(const std::string& dir, uint64_t slot_size,
                               const std::string& image_a_path, bool redundant_env = false);
    // Opens an existing simulated ECU.
    static SimulatedEcu open(const std::string& dir);

    const std::string& dir() const { return dir_; }
    std::vector<std::string> slots() const { return {"A", "B"}; }
    std::string slot_device(const std::string& slot) const;
    std::string env_config_path() const;
    std::string cmdline_path() const;
    std::string boot_id_path() const;
    uint64_t slot_size() const;

    std::shared_ptr<UBootEnv> env() const;
    // The agent's U-Boot boot control over this ECU's files (fw_env.config, cmdline).
    std::unique_ptr<UBootBootControl> boot_control() const;
    // Records a reboot request (the reboot-requested file) instead of rebooting.
    void request_reboot() const;
    std::unique_ptr<Rebooter> rebooter() const;

    // One power-on: boot script, then "boot" the chosen slot; a panicking slot resets the board
    // and the script runs again. Writes cmdline, boot_id and booted-slot, and clears the reboot
    // request. Throws Error(State) if nothing booted within kMaxPowerOnsPerBoot power-ons.
    BootOutcome power_on();

    // The slot booted last ("" if never), and the health check the agent runs after a boot.
    std::string booted_slot() const;
    // True if the booted slot's image says health=ok; otherwise false with *message set.
    bool health_check(std::string* message) const;
    bool reboot_requested() const;
    std::optional<SimImageHeader> slot_image(const std::string& slot) const;

private:
    explicit SimulatedEcu(std::string dir) : dir_(std::move(dir)) {}
    std::string file(const std::string& name) const;

    std::string dir_;
};

} // namespace ota::hal::sim
