#include "agent/update/slot_switch.h"

namespace ota::update {

void switch_slot(const StepContext& ctx, AgentState& state, const BundleTarget& firmware,
                 const std::vector<PendingModel>& models, const std::optional<ReleaseRef>& release,
                 const UpdateOptions& options) {
    const std::string target_slot = state.pending->slot;
    const int tries = ctx.config.bootloader.tries;
    ctx.platform.boot->set_primary(target_slot, tries);
    state.pending->stage = PendingStage::Switched;
    state.pending->models = models;
    state.pending->release = release;
    ctx.record(state, "installed", firmware.component, firmware.version,
               "slot " + target_slot + " will be tried " + std::to_string(tries) + " times");
    ctx.save(state);
    ctx.emit("switch", "slot " + target_slot + " is now first in BOOT_ORDER with " +
                           std::to_string(tries) + " tries");
    reboot_into(ctx, target_slot, options);
}

void reboot_into(const StepContext& ctx, const std::string& slot, const UpdateOptions& options) {
    if (!options.reboot) return;
    ctx.wait_for("reboot");
    ctx.emit("reboot", "rebooting into slot " + slot);
    ctx.platform.rebooter->reboot();
}

} // namespace ota::update
