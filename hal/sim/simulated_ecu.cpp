#include "hal/sim/simulated_ecu.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <algorithm>
#include <cctype>
#include <fcntl.h>
#include <sstream>
#include <unistd.h>

namespace ota::hal::sim {

namespace {

const char* kEnvFile = "uboot.env";
const char* kEnvConfigFile = "fw_env.config";
const char* kBootedSlotFile = "booted-slot";
const char* kRebootFile = "reboot-requested";

std::vector<std::string> split_words(const std::string& s) {
    std::istringstream in(s);
    std::vector<std::string> words;
    std::string w;
    while (in >> w)
        words.push_back(w);
    return words;
}

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return s.substr(b, e - b);
}

// U-Boot's `test N -gt 0` on a value it cannot parse compares 0: an unreadable counter is empty.
int tries_as_uboot_reads_them(const std::string& value) {
    try {
        return parse_boot_tries(value);
    } catch (const Error&) {
        return 0;
    }
}

class SimRebooter : public Rebooter {
public:
    explicit SimRebooter(std::string path) : path_(std::move(path)) {}
    void reboot() override {
        ::sync();
        write_file_atomic(path_, "reboot requested\n");
    }

private:
    std::string path_;
};

} // namespace

std::string run_boot_script(UBootEnv& env, const std::vector<std::string>& slots, int default_tries,
                            std::vector<std::string>* log) {
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

SimulatedEcu SimulatedEcu::create(const std::string& dir, uint64_t slot_size,
                                  const std::string& image_a_path, bool redundant_env) {
    if (slot_size == 0 || slot_size > (uint64_t{16} << 30))
        throw Error(ErrorKind::Config, "slot size must be within (0, 16 GiB]");
    make_directories(dir);
    SimulatedEcu ecu(dir);

    // Slot A: the image, zero-filled to the slot size. Slot B: all zeros (not bootable).
    {
        UniqueFd in = open_or_throw(image_a_path, O_RDONLY);
        uint64_t image_size = file_size(image_a_path);
        if (image_size > slot_size)
            throw Error(ErrorKind::TooLarge, image_a_path + " (" + std::to_string(image_size) +
                                                 " bytes) does not fit a slot of " +
                                                 std::to_string(slot_size) + " bytes");
        UniqueFd out = open_or_throw(ecu.slot_device("A"), O_WRONLY | O_CREAT | O_TRUNC);
        std::string buf(1 << 20, '\0');
        size_t n;
        while ((n = read_full(in.get(), buf.data(), buf.size(), image_a_path)) > 0)
            write_all(out.get(), buf.data(), n, ecu.slot_device("A"));
        if (::ftruncate(out.get(), static_cast<off_t>(slot_size)) != 0)
            throw Error(ErrorKind::Io, "cannot size " + ecu.slot_device("A"));
        fsync_or_throw(out.get(), ecu.slot_device("A"));
    }
    {
        UniqueFd out = open_or_throw(ecu.slot_device("B"), O_WRONLY | O_CREAT | O_TRUNC);
        if (::ftruncate(out.get(), static_cast<off_t>(slot_size)) != 0)
            throw Error(ErrorKind::Io, "cannot size " + ecu.slot_device("B"));
        fsync_or_throw(out.get(), ecu.slot_device("B"));
    }

    // Environment file and its fw_env.config (absolute path, so fw_printenv -c works anywhere).
    char resolved[4096];
    std::string abs_dir = ::realpath(dir.c_str(), resolved) ? std::string(resolved) : dir;
    EnvConfig config;
    std::string env_path = abs_dir + "/" + kEnvFile;
    config.copies.push_back({env_path, 0, kSimEnvSize, 0, 0});
    if (redundant_env)
        config.copies.push_back({env_path, static_cast<int64_t>(kSimEnvSize), kSimEnvSize, 0, 0});
    {
        UniqueFd out = open_or_throw(env_path, O_WRONLY | O_CREAT | O_TRUNC);
        if (::ftruncate(out.get(), static_cast<off_t>(kSimEnvSize * config.copies.size())) != 0)
            throw Error(ErrorKind::Io, "cannot size " + env_path);
    }
    write_file_atomic(ecu.env_config_path(), format_fw_env_config(config));
    UBootEnv env(config);
    env.initialize({{"BOOT_ORDER", "A B"},
                    {"BOOT_A_LEFT", format_boot_tries(kDefaultBootTries)},
                    {"BOOT_B_LEFT", format_boot_tries(kDefaultBootTries)}});
    remove_file_durable(ecu.file(kBootedSlotFile));
    remove_file_durable(ecu.file(kRebootFile));

    ecu.power_on();
    return ecu;
}

SimulatedEcu SimulatedEcu::open(const std::string& dir) {
    SimulatedEcu ecu(dir);
    for (const char* f : {kEnvConfigFile, "slot-A.img", "slot-B.img"})
        if (!file_exists(ecu.file(f)))
            throw Error(ErrorKind::NotFound,
                        dir + " is not a simulated ECU (no " + std::string(f) + ")");
    return ecu;
}

std::string SimulatedEcu::file(const std::string& name) const {
    return join_path(dir_, name);
}

std::string SimulatedEcu::slot_device(const std::string& slot) const {
    if (slot != "A" && slot != "B") throw Error(ErrorKind::Config, "unknown slot '" + slot + "'");
    return file("slot-" + slot + ".img");
}

std::string SimulatedEcu::env_config_path() const {
    return file(kEnvConfigFile);
}

uint64_t SimulatedEcu::slot_size() const {
    return file_size(slot_device("A"));
}

std::shared_ptr<UBootEnv> SimulatedEcu::env() const {
    return std::make_shared<UBootEnv>(load_fw_env_config(env_config_path()));
}

std::unique_ptr<UBootBootControl> SimulatedEcu::boot_control() const {
    UBootBootControlOptions options;
    options.slots = slots();
    std::string booted_file = file(kBootedSlotFile);
    options.booted_slot_provider = [booted_file]() {
        if (!file_exists(booted_file))
            throw Error(ErrorKind::State,
                        "the simulated ECU has not booted (" + booted_file + " missing)");
        return trim(read_file(booted_file, 64));
    };
    return std::make_unique<UBootBootControl>(env(), options);
}

std::unique_ptr<Rebooter> SimulatedEcu::rebooter() const {
    return std::make_unique<SimRebooter>(file(kRebootFile));
}

std::optional<SimImageHeader> SimulatedEcu::slot_image(const std::string& slot) const {
    return read_sim_image_header(slot_device(slot));
}

BootOutcome SimulatedEcu::power_on() {
    auto env_ptr = env();
    BootOutcome outcome;
    remove_file_durable(file(kRebootFile));
    while (outcome.power_ons < kMaxPowerOnsPerBoot) {
        ++outcome.power_ons;
        outcome.log.push_back("power-on " + std::to_string(outcome.power_ons));
        std::string slot = run_boot_script(*env_ptr, slots(), kDefaultBootTries, &outcome.log);
        if (slot.empty()) continue; // the script reset the board
        auto image = slot_image(slot);
        if (!image || image->health == SimHealth::Panic) {
            outcome.log.push_back(std::string("slot ") + slot + ": " +
                                  (image ? "kernel panic" : "no bootable image") +
                                  ", watchdog reset");
            continue;
        }
        outcome.slot = slot;
        outcome.healthy = image->health == SimHealth::Ok;
        outcome.log.push_back("slot " + slot + " up: version " + std::to_string(image->version) +
                              ", health " + sim_health_name(image->health));
        write_file_atomic(file(kBootedSlotFile), slot + "\n");
        outcome.state = boot_state_from_env(env_ptr->read(), slots(), kDefaultBootTries);
        return outcome;
    }
    remove_file_durable(file(kBootedSlotFile));
    throw Error(ErrorKind::State, "no slot booted after " + std::to_string(outcome.power_ons) +
                                      " power-ons (both slots fail to boot)");
}

std::string SimulatedEcu::booted_slot() const {
    if (!file_exists(file(kBootedSlotFile))) return "";
    return trim(read_file(file(kBootedSlotFile), 64));
}

bool SimulatedEcu::health_check(std::string* message) const {
    std::string slot = booted_slot();
    std::string msg;
    bool ok = false;
    if (slot.empty()) {
        msg = "the ECU has not booted";
    } else {
        auto image = slot_image(slot);
        if (!image)
            msg = "slot " + slot + " has no valid image header";
        else if (image->health != SimHealth::Ok)
            msg = "slot " + slot + " (version " + std::to_string(image->version) +
                  ") is unhealthy: health=" + sim_health_name(image->health);
        else {
            ok = true;
            msg = "slot " + slot + " (version " + std::to_string(image->version) + ") is healthy";
        }
    }
    if (message) *message = msg;
    return ok;
}

bool SimulatedEcu::reboot_requested() const {
    return file_exists(file(kRebootFile));
}

} // namespace ota::hal::sim
