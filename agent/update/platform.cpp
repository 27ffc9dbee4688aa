#include "agent/update/platform.h"

#include "agent/common/process.h"
#include "hal/linux_reboot.h"
#include "hal/uboot_boot_control.h"

namespace ota::update {

bool ProcessHookRunner::run(const std::vector<std::string>& argv, int timeout_s,
                            std::string* output, const std::vector<std::string>& extra_env) {
    if (argv.empty()) return true;
    ProcessOptions options;
    options.timeout_s = timeout_s;
    options.extra_env = extra_env;
    ProcessResult r = run_process(argv, options);
    if (output) {
        *output = r.output;
        if (r.timed_out) *output += "\n(timed out after " + std::to_string(timeout_s) + " s)";
    }
    return r.ok();
}

Platform make_platform(const AgentConfig& config) {
    Platform p;
    auto env = std::make_shared<hal::UBootEnv>(
        hal::UBootEnv::from_config_file(config.bootloader.fw_env_config));
    hal::UBootBootControlOptions options;
    options.cmdline_path = config.bootloader.cmdline;
    options.slots.clear();
    for (const auto& [name, dev] : config.slots)
        options.slots.push_back(name);
    p.boot = std::make_unique<hal::UBootBootControl>(env, options);
    p.rebooter = std::make_unique<hal::LinuxRebooter>(config.reboot_command);
    p.boot_id = std::make_unique<hal::FileBootId>(config.bootloader.boot_id);
    p.clock = std::make_unique<SystemClock>();
    p.state = std::make_unique<FileStateStore>(config.state_dir);
    p.hooks = std::make_unique<ProcessHookRunner>();
    p.slots = config.slots;
    return p;
}

} // namespace ota::update
