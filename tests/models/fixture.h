// A simulated ECU with a model store, a signed repository on disk (file:// URLs) and the real
// ota-agent / ota-publish programs: shared by the models and service tests.
#pragma once
#include "agent/common/canonical_json.h"
#include "support/test_support.h"

#include <string>
#include <sys/types.h>
#include <vector>

namespace ota::test {

class EcuFixture {
public:
    EcuFixture();

    TempDir tmp;
    std::string repo, sim, state, store, config_path, vehicle_file;
    Json config;
    static constexpr const char* kHw = "demo-ecu";

    // Rewrites the configuration file from `config`.
    void save_config();
    // Runs ota-publish ARGS; REQUIREs exit 0; returns its output.
    std::string publish(const std::string& args);
    // Runs ota-agent --config CONFIG ARGS; returns the exit status.
    int agent(const std::string& args, std::string* output = nullptr);

    // A model folder for (name, version): weights.bin (seeded), labels/classes.txt and
    // config.json with "health": health.
    std::string make_model(const std::string& name, uint64_t version,
                           const std::string& health = "ok");
    // Builds, signs and publishes a full model bundle; returns the bundle path in the build folder.
    std::string add_model(const std::string& name, uint64_t version,
                          const std::string& health = "ok");
    std::string add_model_delta(const std::string& name, uint64_t from, uint64_t version);
    // A simulated firmware image (health: ok, fail, panic) as a signed full bundle.
    std::string add_firmware(uint64_t version, const std::string& health = "ok");
    void add_release(const std::string& id, uint64_t version,
                     const std::vector<std::string>& components);
    // The published file of a target (to corrupt it).
    std::string target_file(const std::string& target_path);

    // Model files as installed: ROOT/NAME/current/FILE.
    std::string current_file(const std::string& name, const std::string& file) const;
    std::string model_file(const std::string& name, uint64_t version,
                           const std::string& file) const;
    Json agent_state() const;
    std::string boot_order();
    void set_vehicle(bool parked, bool consent = false, int battery = 90);
    // Powers the simulated ECU on (the reboot the agent asked for); returns the slot that came up.
    std::string power_on();
};

// Starts `command` through /bin/sh with stdout+stderr to `log`; returns the pid.
pid_t spawn_shell(const std::string& command, const std::string& log);
// Waits for the pid; returns its exit status (-1 if it did not exit normally).
int wait_exit(pid_t pid);

} // namespace ota::test
