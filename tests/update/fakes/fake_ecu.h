// A fake A/B ECU for the engine's tests, in memory except for the two slot files (the installer
// writes real files): the U-Boot environment as a map, the booted slot and the boot id. Its
// power-on runs the U-Boot boot script of the simulator (hal/sim/boot_script.h), so boot counting
// and fallback are exactly U-Boot's. The agent sees it through the same interfaces as a real ECU:
// boot control (the real UBootBootControl over the in-memory environment), rebooter and boot id.
#pragma once
#include "hal/boot_control.h"
#include "hal/boot_id.h"
#include "hal/uboot_env.h"
#include "tests/update/fakes/transitions.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace ota::test::fakes {

// The U-Boot environment in memory.
class MemoryEnv : public hal::EnvStorage {
public:
    hal::EnvVars read() const override { return vars_; }
    void update(const std::function<void(hal::EnvVars&)>& change) override {
        hal::EnvVars next = vars_;
        change(next);
        vars_ = next; // one write, all or nothing
    }

private:
    hal::EnvVars vars_;
};

class FakeEcu {
public:
    // slot name -> slot file (must exist). Slot A is booted once at creation, as on a real ECU.
    FakeEcu(std::map<std::string, std::string> slot_files, Transitions& transitions);

    // The hardware side.
    // One power-on, as U-Boot does it (panicking slots reset the board). Clears the reboot request.
    std::string power_on();
    std::string booted_slot() const { return booted_; }
    std::string boot_id() const { return "boot-" + std::to_string(boots_); }
    int boots() const { return boots_; }
    bool reboot_requested() const { return reboot_requested_; }
    // True once the bootloader passed over the first slot of BOOT_ORDER (tries used up, or it
    // panicked): the only case in which the agent may report a rollback.
    bool fell_back() const { return fell_back_; }
    hal::BootState boot_state() const;
    const std::map<std::string, std::string>& slot_files() const { return slot_files_; }
    // The environment as someone other than the agent sees it (fw_setenv, the bootloader).
    hal::EnvStorage& env() { return *env_; }
    std::vector<std::string> slots() const;

    // The agent side: each write of the environment and each reboot request is a transition.
    std::unique_ptr<hal::BootControl> boot_control();
    std::unique_ptr<hal::Rebooter> rebooter();
    std::unique_ptr<hal::BootId> boot_id_source();

private:
    friend class FakeBootControl;
    friend class FakeRebooter;

    std::map<std::string, std::string> slot_files_;
    Transitions& transitions_;
    std::shared_ptr<MemoryEnv> env_ = std::make_shared<MemoryEnv>();
    std::string booted_;
    int boots_ = 0;
    bool reboot_requested_ = false;
    bool fell_back_ = false;
};

} // namespace ota::test::fakes
