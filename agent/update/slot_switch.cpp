#include "agent/update/slot_switch.h"

#include <algorithm>

namespace ota::update {

namespace {

// True when the bootloader would try `slot` first at the next boot.
bool is_primary(const hal::BootState& bs, const std::string& slot) {
    auto tries = bs.tries_left.find(slot);
    return !bs.order.empty() && bs.order.front() == slot && tries != bs.tries_left.end() &&
           tries->second > 0;
}

} // namespace

void switch_slot(const StepContext& ctx, AgentState& state, const BundleTarget& firmware,
                 const std::vector<PendingModel>& models, const std::optional<ReleaseRef>& release,
                 const UpdateOptions& options) {
    const std::string target_slot = state.pending->slot;
    const int tries = ctx.config.bootloader.tries;
    state.pending->stage = PendingStage::Switched;
    state.pending->boot_id = ctx.platform.boot_id->current();
    state.pending->models = models;
    state.pending->release = release;
    ctx.record(state, "installed", firmware.component, firmware.version,
               "slot " + target_slot + " will be tried " + std::to_string(tries) + " times");
    ctx.save(state);
    ctx.platform.boot->set_primary(target_slot, tries);
    ctx.emit("switch", "slot " + target_slot + " is now first in BOOT_ORDER with " +
                           std::to_string(tries) + " tries");
    reboot_into(ctx, target_slot, options);
}

SwitchProgress switch_progress(const StepContext& ctx, const AgentState& state,
                               const std::string& booted) {
    const PendingUpdate& p = *state.pending;
    // A fallback already seen (a restart came before its report was finished) stays one.
    auto failed = state.failed_versions.find(p.component);
    if (failed != state.failed_versions.end() && failed->second.count(p.version))
        return SwitchProgress::FellBack;
    // No boot id recorded (a state written by an older agent): a reboot happened, as they assumed.
    if (!p.boot_id.empty() && p.boot_id == ctx.platform.boot_id->current())
        return SwitchProgress::AwaitingReboot;
    if (booted == p.slot) return SwitchProgress::BootedNewSlot;
    // The old slot runs after a reboot. The bootloader fell back only if it had the new slot
    // before the running one with its tries used up; otherwise the switch never reached it.
    const hal::BootState bs = ctx.platform.boot->state();
    auto pos = [&](const std::string& s) { return std::find(bs.order.begin(), bs.order.end(), s); };
    auto tries = bs.tries_left.find(p.slot);
    if (pos(p.slot) < pos(booted) && tries != bs.tries_left.end() && tries->second == 0)
        return SwitchProgress::FellBack;
    if (p.boot_id.empty()) return SwitchProgress::FellBack;
    return SwitchProgress::AwaitingReboot;
}

void resume_switch(const StepContext& ctx, AgentState& state, const UpdateOptions& options) {
    PendingUpdate& p = *state.pending;
    const std::string boot_id = ctx.platform.boot_id->current();
    if (p.boot_id != boot_id) {
        // The ECU rebooted without trying the new slot: the switch is made again in this boot.
        p.boot_id = boot_id;
        ctx.save(state);
    }
    if (!is_primary(ctx.platform.boot->state(), p.slot)) {
        ctx.platform.boot->set_primary(p.slot, ctx.config.bootloader.tries);
        ctx.emit("switch", "slot " + p.slot + " is now first in BOOT_ORDER with " +
                               std::to_string(ctx.config.bootloader.tries) + " tries");
    }
    ctx.emit("reboot", "version " + std::to_string(p.version) + " in slot " + p.slot +
                           " waits for the reboot");
    reboot_into(ctx, p.slot, options);
}

void reboot_into(const StepContext& ctx, const std::string& slot, const UpdateOptions& options) {
    if (!options.reboot) return;
    ctx.wait_for("reboot");
    ctx.emit("reboot", "rebooting into slot " + slot);
    ctx.platform.rebooter->reboot();
}

} // namespace ota::update
