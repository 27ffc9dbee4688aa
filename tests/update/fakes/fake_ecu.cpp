#include "tests/update/fakes/fake_ecu.h"

#include "agent/common/error.h"
#include "hal/sim/boot_script.h"
#include "hal/sim/sim_image.h"
#include "hal/uboot_boot_control.h"

namespace ota::test::fakes {

// The agent's U-Boot boot control over the fake's environment; every write is a transition.
class FakeBootControl : public hal::BootControl {
public:
    explicit FakeBootControl(FakeEcu& ecu) : ecu_(ecu), real_(ecu.env_, options(ecu)) {}
    std::vector<std::string> slots() const override { return real_.slots(); }
    std::string booted_slot() override { return real_.booted_slot(); }
    void mark_bad(const std::string& slot) override {
        write("mark_bad(" + slot + ")", [&] { real_.mark_bad(slot); });
    }
    void set_primary(const std::string& slot, int tries) override {
        write("set_primary(" + slot + ")", [&] { real_.set_primary(slot, tries); });
    }
    void mark_good(const std::string& slot) override {
        write("mark_good(" + slot + ")", [&] { real_.mark_good(slot); });
    }
    hal::BootState state() override { return real_.state(); }

private:
    static hal::UBootBootControlOptions options(FakeEcu& ecu) {
        hal::UBootBootControlOptions o;
        o.slots = ecu.slots();
        o.booted_slot_provider = [&ecu] {
            if (ecu.booted_.empty()) throw Error(ErrorKind::State, "the fake ECU has not booted");
            return ecu.booted_;
        };
        return o;
    }
    template <typename F> void write(const std::string& what, F f) {
        ecu_.transitions_.before(what);
        f();
        ecu_.transitions_.after(what);
    }
    FakeEcu& ecu_;
    hal::UBootBootControl real_;
};

class FakeRebooter : public hal::Rebooter {
public:
    explicit FakeRebooter(FakeEcu& ecu) : ecu_(ecu) {}
    void reboot() override {
        ecu_.transitions_.before("reboot");
        ecu_.reboot_requested_ = true;
        ecu_.transitions_.after("reboot");
    }

private:
    FakeEcu& ecu_;
};

class FakeBootId : public hal::BootId {
public:
    explicit FakeBootId(const FakeEcu& ecu) : ecu_(ecu) {}
    std::string current() override { return ecu_.boot_id(); }

private:
    const FakeEcu& ecu_;
};

FakeEcu::FakeEcu(std::map<std::string, std::string> slot_files, Transitions& transitions)
    : slot_files_(std::move(slot_files)), transitions_(transitions) {
    power_on();
}

std::vector<std::string> FakeEcu::slots() const {
    std::vector<std::string> names;
    for (const auto& [name, file] : slot_files_)
        names.push_back(name);
    return names;
}

hal::BootState FakeEcu::boot_state() const {
    return hal::boot_state_from_env(env_->read(), slots(), hal::kDefaultBootTries);
}

std::string FakeEcu::power_on() {
    const hal::BootState before = boot_state();
    auto r = hal::sim::power_on_until_up(
        *env_, slots(), hal::kDefaultBootTries, [&](const std::string& slot, std::string*) {
            auto image = hal::sim::read_sim_image_header(slot_files_.at(slot));
            return image && image->health != hal::sim::SimHealth::Panic;
        });
    if (!before.order.empty() && r.slot != before.order.front()) fell_back_ = true;
    booted_ = r.slot;
    ++boots_;
    reboot_requested_ = false;
    return booted_;
}

std::unique_ptr<hal::BootControl> FakeEcu::boot_control() {
    return std::make_unique<FakeBootControl>(*this);
}
std::unique_ptr<hal::Rebooter> FakeEcu::rebooter() {
    return std::make_unique<FakeRebooter>(*this);
}
std::unique_ptr<hal::BootId> FakeEcu::boot_id_source() {
    return std::make_unique<FakeBootId>(*this);
}

} // namespace ota::test::fakes
