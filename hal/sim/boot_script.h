// The U-Boot boot-counting script (docs/boot-counting.md) in code, over any EnvStorage: the
// simulated ECU runs it on its uboot.env file, the engine tests' fake boot control on memory, so
// both boot exactly as U-Boot does under QEMU.
#pragma once
#include "hal/uboot_env.h"

#include <functional>
#include <string>
#include <vector>

namespace ota::hal::sim {

// A board with a hanging or panicking slot keeps resetting; the simulation gives up after this
// many power-ons within one boot (the real board would loop forever).
constexpr int kMaxPowerOnsPerBoot = 32;

// One run of the boot script over an environment. Returns the chosen slot, or "" when no slot in
// BOOT_ORDER had tries left (the script then restored the tries and asked for a reset). Exactly
// one environment write either way, as the script's single saveenv.
std::string run_boot_script(EnvStorage& env, const std::vector<std::string>& slots,
                            int default_tries, std::vector<std::string>* log = nullptr);

struct PowerOnResult {
    std::string slot;             // the slot that came up
    int power_ons = 0;            // resets included
    std::vector<std::string> log; // what happened, one line per step
};

// Power-ons until a slot comes up: the script chooses a slot, then `comes_up(slot, &line)` says
// whether its kernel reaches user space (false: the watchdog resets the board and the script runs
// again; `line` says why). Throws Error(State) if nothing came up within kMaxPowerOnsPerBoot.
PowerOnResult
power_on_until_up(EnvStorage& env, const std::vector<std::string>& slots, int default_tries,
                  const std::function<bool(const std::string& slot, std::string* line)>& comes_up);

} // namespace ota::hal::sim
