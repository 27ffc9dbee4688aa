#include "agent/update/boot_check.h"

#include "agent/common/error.h"
#include "agent/models/model_check.h"
#include "agent/update/slot_switch.h"

namespace ota::update {

namespace {

bool system_healthy(const StepContext& ctx, const UpdateOptions& options, std::string* out) {
    if (options.skip_health || ctx.config.health_check.empty()) return true;
    ctx.emit("health", "running health check");
    return ctx.platform.hooks->run(ctx.config.health_check, options.health_timeout_s, out);
}

// Nothing waits for this boot (or an interrupted install resumes with the next update): a healthy
// running slot gets its tries back, as RAUC's mark-good service does.
std::string confirm_running_slot(const StepContext& ctx, const AgentState& state,
                                 const std::string& booted, const UpdateOptions& options) {
    std::string out;
    if (!system_healthy(ctx, options, &out)) {
        ctx.emit("health", "health check of the running slot failed: " + out);
        return "health-failed";
    }
    ctx.platform.boot->mark_good(booted);
    ctx.emit("commit", "slot " + booted + " confirmed good");
    return state.pending ? "confirmed" : "nothing-pending";
}

// The bootloader chose a slot whose install never finished (it is marked bad while being written,
// so only something else can have made it bootable): never committed. It leaves BOOT_ORDER again
// and the ECU goes back to the slot it was written from, where the install resumes.
std::string refuse_unfinished_slot(const StepContext& ctx, AgentState& state,
                                   const std::string& booted, const UpdateOptions& options) {
    const PendingUpdate& p = *state.pending;
    ctx.record(state, "failed", p.component, p.version,
               "slot " + booted + " was booted although its install never finished; not committed");
    ctx.save(state);
    ctx.platform.boot->mark_bad(booted);
    ctx.emit("health", "slot " + booted + " holds an unfinished install of version " +
                           std::to_string(p.version) + ": not committed; slot " + p.from_slot +
                           " runs next");
    if (options.reboot) {
        ctx.emit("reboot", "rebooting into slot " + p.from_slot);
        ctx.platform.rebooter->reboot();
    }
    return "not-committed";
}

std::string commit_new_slot(const StepContext& ctx, AgentState& state,
                            const UpdateOptions& options) {
    const PendingUpdate p = *state.pending;
    std::string out;
    if (!system_healthy(ctx, options, &out)) {
        state.pending->health_failures++;
        ctx.record(state, "health-failed", p.component, p.version,
                   "health check failed on slot " + p.slot + ": " + out);
        ctx.save(state);
        ctx.emit("health", "health check failed on slot " + p.slot + "; not committing");
        if (options.reboot) {
            ctx.emit("reboot", "rebooting: the bootloader will retry or fall back");
            ctx.platform.rebooter->reboot();
        }
        return "health-failed";
    }
    ctx.platform.boot->mark_good(p.slot);
    state.installed[p.component] = InstalledComponent{p.version, p.slot, p.image_sha256};
    for (const auto& m : p.models) {
        if (!ctx.store) break;
        ctx.store->commit(m.name);
        auto mf = ctx.store->manifest(m.name, m.version);
        state.installed[m.name] = InstalledComponent{m.version, "", mf ? mf->image_sha256 : ""};
    }
    if (p.release) state.release = p.release;
    state.pending.reset();
    ctx.record(state, "committed", p.component, p.version, "running from slot " + p.slot);
    ctx.save(state);
    ctx.emit(
        "commit",
        p.component + " version " + std::to_string(p.version) + " committed: slot " + p.slot +
            " marked good" +
            (p.models.empty() ? "" : " (with " + std::to_string(p.models.size()) + " model(s))"));
    return "committed";
}

// We run the old slot although the new one was switched to and tried: the bootloader fell back.
// The verdict (the version failed, never retried) is saved first, with the update still pending;
// then the failed slot leaves BOOT_ORDER, the running one is confirmed and the release's models
// still on trial go back; only then is the update no longer pending. A restart anywhere in
// between sees the verdict and finishes these steps (each of them can be repeated).
std::string report_fallback(const StepContext& ctx, AgentState& state, const std::string& booted) {
    const PendingUpdate p = *state.pending;
    if (!state.failed_versions[p.component].count(p.version)) {
        state.failed_versions[p.component].insert(p.version);
        if (p.release) state.failed_versions["release"].insert(p.release->version);
        ctx.record(state, "rolled-back", p.component, p.version,
                   "slot " + p.slot + " did not come up; the bootloader fell back to slot " +
                       booted);
        ctx.save(state);
    }
    ctx.platform.boot->mark_bad(p.slot);
    ctx.platform.boot->mark_good(booted);
    for (const auto& m : p.models)
        if (ctx.store && ctx.store->trial_version(m.name)) ctx.store->rollback(m.name);
    state.pending.reset();
    ctx.save(state);
    ctx.emit("rollback", "ROLLBACK: version " + std::to_string(p.version) + " in slot " + p.slot +
                             " failed to boot; running slot " + booted +
                             " again; this version will not be retried" +
                             (p.models.empty() ? "" : "; models of the release restored"));
    return "rolled-back";
}

} // namespace

std::string boot_check(const StepContext& ctx, const UpdateOptions& options) {
    AgentState state = ctx.load();
    const std::string booted = ctx.platform.boot->booted_slot();
    const bool switched = state.pending && state.pending->stage == PendingStage::Switched;
    // Models activated without a firmware switch and never committed (power cut during their
    // health check): back to their previous version.
    if (ctx.store && !switched) {
        for (const auto& name : ctx.store->recover()) {
            ctx.emit("rollback", "model " + name +
                                     " was not committed before the restart: restored to version " +
                                     std::to_string(ctx.store->current_version(name).value_or(0)));
            ctx.record(state, "rolled-back", name, ctx.store->current_version(name).value_or(0),
                       "interrupted activation rolled back");
            ctx.save(state);
        }
    }
    if (ctx.store)
        for (const auto& c : models::check_models(*ctx.store, false))
            if (c.problem) ctx.emit("error", "CORRUPTED: " + *c.problem);
    if (!state.pending) return confirm_running_slot(ctx, state, booted, options);
    if (!switched) {
        if (booted == state.pending->slot)
            return refuse_unfinished_slot(ctx, state, booted, options);
        return confirm_running_slot(ctx, state, booted, options);
    }
    switch (switch_progress(ctx, state, booted)) {
    case SwitchProgress::AwaitingReboot:
        // The agent restarted, the ECU did not reboot into the new slot yet: nothing to judge.
        ctx.emit("reboot", "version " + std::to_string(state.pending->version) + " in slot " +
                               state.pending->slot + " waits for the reboot");
        return "reboot-pending";
    case SwitchProgress::BootedNewSlot: return commit_new_slot(ctx, state, options);
    case SwitchProgress::FellBack: break;
    }
    return report_fallback(ctx, state, booted);
}

std::string rollback_model(const StepContext& ctx, const std::string& component) {
    AgentState state = ctx.load();
    if (!ctx.store || !ctx.store->current_version(component))
        throw Error(ErrorKind::NotFound, "no installed model named " + component);
    if (state.pending && state.pending->stage == PendingStage::Switched)
        for (const auto& m : state.pending->models)
            if (m.name == component)
                throw Error(ErrorKind::State, "model " + component +
                                                  " belongs to the pending release; roll back " +
                                                  ctx.config.component + " instead");
    auto from = ctx.store->rollback(component);
    auto now = ctx.store->current_version(component);
    if (from) state.failed_versions[component].insert(*from);
    if (now)
        state.installed[component].version = *now;
    else
        state.installed.erase(component);
    ctx.record(state, "rolled-back", component, from.value_or(0),
               "rolled back by request to " +
                   (now ? "version " + std::to_string(*now) : "no model"));
    ctx.save(state);
    ctx.emit("rollback", "model " + component + " is now " +
                             (now ? "version " + std::to_string(*now) : "not installed"));
    return "rolled-back";
}

std::string rollback_firmware(const StepContext& ctx, const UpdateOptions& options) {
    AgentState state = ctx.load();
    if (!state.pending || state.pending->stage != PendingStage::Switched)
        throw Error(ErrorKind::State, "no uncommitted " + ctx.config.component +
                                          " update to roll back (a committed slot is only left "
                                          "through a newer signed version)");
    PendingUpdate p = *state.pending;
    const std::string booted = ctx.platform.boot->booted_slot();
    ctx.platform.boot->mark_bad(p.slot);
    if (booted == p.from_slot)
        ctx.platform.boot->mark_good(booted);
    else
        ctx.platform.boot->set_primary(p.from_slot, ctx.config.bootloader.tries);
    for (const auto& m : p.models)
        if (ctx.store) ctx.store->rollback(m.name);
    state.failed_versions[p.component].insert(p.version);
    if (p.release) state.failed_versions["release"].insert(p.release->version);
    state.pending.reset();
    ctx.record(state, "rolled-back", p.component, p.version,
               "rolled back by request to slot " + p.from_slot);
    ctx.save(state);
    ctx.emit("rollback", "version " + std::to_string(p.version) + " in slot " + p.slot +
                             " rolled back; slot " + p.from_slot + " is primary");
    if (booted != p.from_slot && options.reboot) {
        ctx.emit("reboot", "rebooting into slot " + p.from_slot);
        ctx.platform.rebooter->reboot();
    }
    return "rolled-back";
}

} // namespace ota::update
