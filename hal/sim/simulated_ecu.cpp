#include "hal/sim/simulated_ecu.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"

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
const char* kCmdlineFile = "cmdline";
const char* kBootIdFile = "boot_id";
const char* kRebootFile = "reboot-requested";

std::string trim(const std::string& s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
        ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
        --e;
    return s.substr(b, e - b);
}

// A fresh boot id in the kernel's format (a random UUID).
std::string new_boot_id() {
    uint8_t b[16];
    random_bytes(b, sizeof b);
    b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);
    b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);
    std::string hex = to_hex(b, sizeof b);
    return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
           hex.substr(16, 4) + "-" + hex.substr(20);
}

class SimRebooter : public Rebooter {
public:
    explicit SimRebooter(const SimulatedEcu& ecu) : ecu_(ecu) {}
    void reboot() override { ecu_.request_reboot(); }

private:
    SimulatedEcu ecu_;
};

} // namespace

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

std::string SimulatedEcu::cmdline_path() const {
    return file(kCmdlineFile);
}

std::string SimulatedEcu::boot_id_path() const {
    return file(kBootIdFile);
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
    options.cmdline_path = cmdline_path();
    return std::make_unique<UBootBootControl>(env(), options);
}

void SimulatedEcu::request_reboot() const {
    write_file_atomic(file(kRebootFile), "reboot requested\n");
}

std::unique_ptr<Rebooter> SimulatedEcu::rebooter() const {
    return std::make_unique<SimRebooter>(*this);
}

std::optional<SimImageHeader> SimulatedEcu::slot_image(const std::string& slot) const {
    return read_sim_image_header(slot_device(slot));
}

BootOutcome SimulatedEcu::power_on() {
    auto env_ptr = env();
    remove_file_durable(file(kRebootFile));
    // What this boot's kernel would see: gone while the board is down.
    remove_file_durable(file(kBootedSlotFile));
    remove_file_durable(file(kCmdlineFile));
    write_file_atomic(file(kBootIdFile), new_boot_id() + "\n");
    PowerOnResult r = power_on_until_up(
        *env_ptr, slots(), kDefaultBootTries, [&](const std::string& slot, std::string* line) {
            auto image = slot_image(slot);
            if (!image || image->health == SimHealth::Panic) {
                *line = "slot " + slot + ": " + (image ? "kernel panic" : "no bootable image") +
                        ", watchdog reset";
                return false;
            }
            *line = "slot " + slot + " up: version " + std::to_string(image->version) +
                    ", health " + sim_health_name(image->health);
            return true;
        });
    BootOutcome outcome;
    outcome.slot = r.slot;
    outcome.power_ons = r.power_ons;
    outcome.log = std::move(r.log);
    outcome.healthy = slot_image(r.slot)->health == SimHealth::Ok;
    write_file_atomic(file(kCmdlineFile), "console=ttyAMA0 root=/dev/slot-" + r.slot +
                                              " ro rauc.slot=" + r.slot + "\n");
    write_file_atomic(file(kBootedSlotFile), r.slot + "\n");
    outcome.state = boot_state_from_env(env_ptr->read(), slots(), kDefaultBootTries);
    return outcome;
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
