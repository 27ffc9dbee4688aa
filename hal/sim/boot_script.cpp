#include "hal/sim/boot_script.h"

#include "agent/common/error.h"
#include "hal/uboot_boot_control.h"

#include <algorithm>
#include <sstream>

namespace ota::hal::sim {

namespace {

std::vector<std::string> split_words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> words;
    std::string w;
    while (in >> w)
        words.push_back(w);
    return words;
}

// U-Boot's `test N -gt 0` on a value it cannot parse compares 0: an unreadable counter is empty.
int tries_as_uboot_reads_them(const std::string& value) {
    try {
        return parse_boot_tries(value);
    } catch (const Error&) {
        return 0;
    }
}

} // namespace

std::string run_boot_script(EnvStorage& env, const std::vector<std::string>& slots,
                            int default_tries, std::vector<std::string>* log) {
    std::string chosen;
    env.update([&](EnvVars& vars) {
        // test -n "${BOOT_ORDER}" || setenv BOOT_ORDER "A B"  (likewise each BOOT_x_LEFT)
        std::string defaults_order;
        for (const auto& s : slots)
            defaults_order += (defaults_order.empty() ? "" : " ") + s;
        if (vars["BOOT_ORDER"].empty()) vars["BOOT_ORDER"] = defaults_order;
        for (const auto& s : slots)
            if (vars[boot_left_variable(s)].empty())
                vars[boot_left_variable(s)] = format_boot_tries(default_tries);

        // for BOOT_SLOT in "${BOOT_ORDER}": first known slot with tries left, decrement.
        for (const auto& slot : split_words(vars["BOOT_ORDER"])) {
            if (std::find(slots.begin(), slots.end(), slot) == slots.end()) continue;
            int left = tries_as_uboot_reads_them(vars[boot_left_variable(slot)]);
            if (left > 0) {
                vars[boot_left_variable(slot)] = format_boot_tries(left - 1);
                chosen = slot;
                if (log)
                    log->push_back("boot script: slot " + slot + " has " + std::to_string(left) +
                                   " tries left, booting it (" + std::to_string(left - 1) +
                                   " left)");
                return; // saveenv, then boot
            }
        }
        // No valid slot: restore every slot's tries, saveenv, reset.
        for (const auto& s : slots)
            vars[boot_left_variable(s)] = format_boot_tries(default_tries);
        if (log)
            log->push_back("boot script: no slot in BOOT_ORDER '" + vars["BOOT_ORDER"] +
                           "' has tries left; tries reset to " + std::to_string(default_tries) +
                           ", resetting");
    });
    return chosen;
}

PowerOnResult
power_on_until_up(EnvStorage& env, const std::vector<std::string>& slots, int default_tries,
                  const std::function<bool(const std::string& slot, std::string* line)>& comes_up) {
    PowerOnResult r;
    while (r.power_ons < kMaxPowerOnsPerBoot) {
        ++r.power_ons;
        r.log.push_back("power-on " + std::to_string(r.power_ons));
        std::string slot = run_boot_script(env, slots, default_tries, &r.log);
        if (slot.empty()) continue; // the script reset the board
        std::string line;
        const bool up = comes_up(slot, &line);
        if (!line.empty()) r.log.push_back(line);
        if (!up) continue;
        r.slot = slot;
        return r;
    }
    throw Error(ErrorKind::State, "no slot booted after " + std::to_string(r.power_ons) +
                                      " power-ons (both slots fail to boot)");
}

} // namespace ota::hal::sim
