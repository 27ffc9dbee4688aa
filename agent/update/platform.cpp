#include "agent/update/platform.h"

#include "agent/common/error.h"
#include "agent/common/process.h"
#include "hal/linux_reboot.h"
#include "hal/sim/simulated_ecu.h"
#include "hal/uboot_boot_control.h"

namespace ota::update {

namespace {
class CommandRebooter : public hal::Rebooter {
public:
    explicit CommandRebooter(std::vector<std::string> argv) : argv_(std::move(argv)) {}
    void reboot() override {
        std::string out;
        if (run_hook(argv_, 60, &out) != 0)
            throw Error(ErrorKind::Io, "reboot command failed: " + out);
    }

private:
    std::vector<std::string> argv_;
};
} // namespace

Platform make_platform(const AgentConfig& config) {
    Platform p;
    if (config.bootloader.type == "sim") {
        auto ecu = hal::sim::SimulatedEcu::open(config.bootloader.sim_dir);
        p.boot = ecu.boot_control();
        p.rebooter = ecu.rebooter();
        for (const auto& slot : ecu.slots())
            p.slots[slot] = ecu.slot_device(slot);
    } else {
        auto env = std::make_shared<hal::UBootEnv>(
            hal::UBootEnv::from_config_file(config.bootloader.fw_env_config));
        hal::UBootBootControlOptions options;
        options.cmdline_path = config.bootloader.cmdline;
        options.slots.clear();
        for (const auto& [name, dev] : config.slots)
            options.slots.push_back(name);
        p.boot = std::make_unique<hal::UBootBootControl>(env, options);
        p.rebooter = std::make_unique<hal::LinuxRebooter>();
    }
    if (!config.slots.empty()) p.slots = config.slots;
    if (!config.reboot_command.empty())
        p.rebooter = std::make_unique<CommandRebooter>(config.reboot_command);
    return p;
}

int run_hook(const std::vector<std::string>& argv, int timeout_s, std::string* output,
             const std::vector<std::string>& extra_env) {
    if (argv.empty()) return 0;
    ProcessOptions options;
    options.timeout_s = timeout_s;
    options.extra_env = extra_env;
    ProcessResult r = run_process(argv, options);
    if (output) {
        *output = r.output;
        if (r.timed_out) *output += "\n(timed out after " + std::to_string(timeout_s) + " s)";
    }
    return r.timed_out ? -1 : r.exit_status;
}

} // namespace ota::update
