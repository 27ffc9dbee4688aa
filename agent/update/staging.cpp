#include "agent/update/staging.h"

#include "agent/bundle/installer.h"
#include "agent/bundle/journal.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/stream_reader.h"
#include "agent/common/error.h"
#include "agent/delta/diff.h"
#include "hal/block_device.h"

namespace ota::update {

namespace {

// The header must match the hash named in the signed target before it is parsed (BundleFile,
// BundleStream), and describe the signed image.
void check_signed_image(const BundleTarget& t, const bundle::BlobSource& bf) {
    if (bf.header().target_sha256 != t.image_sha256 || bf.header().target_size != t.image_length)
        throw Error(ErrorKind::HashMismatch,
                    "bundle header describes a different image than the signed target");
}

// A downloaded bundle matched its signed hash (download_bundle) before this opens it.
bundle::BundleFile open_signed_bundle(const BundleTarget& t, const std::string& bundle_path) {
    bundle::BundleFile bf = bundle::BundleFile::open(bundle_path, t.header_sha256, t.header_length);
    check_signed_image(t, bf);
    return bf;
}

void stage_firmware(const StepContext& ctx, const BundleTarget& t, const bundle::BlobSource& bf,
                    AgentState& state, const std::string& active, const std::string& target_slot) {
    if (bf.header().payload_kind != "firmware")
        throw Error(ErrorKind::Malformed, "bundle " + t.target.path + " is not a firmware bundle");

    // A half-written slot must never be bootable: mark it bad before the first write.
    if (!state.pending || state.pending->slot != target_slot ||
        state.pending->stage != PendingStage::Installing) {
        ctx.platform.boot->mark_bad(target_slot);
        PendingUpdate p;
        p.component = t.component;
        p.version = t.version;
        p.target_path = t.target.path;
        p.slot = target_slot;
        p.from_slot = active;
        p.image_sha256 = t.image_sha256;
        state.pending = p;
        ctx.save(state);
    } else if (state.pending->version != t.version ||
               state.pending->image_sha256 != t.image_sha256) {
        state.pending->component = t.component;
        state.pending->version = t.version;
        state.pending->target_path = t.target.path;
        state.pending->image_sha256 = t.image_sha256;
        ctx.save(state);
    }
    const std::string& device = ctx.platform.slots.at(target_slot);
    ctx.emit("write", "writing slot " + target_slot + " (" + device + ")", 0, t.image_length);
    auto target = hal::open_block_device(device, true);
    std::unique_ptr<hal::BlockDevice> source;
    if (bf.header().source) source = hal::open_block_device(ctx.platform.slots.at(active), false);
    bundle::InstallJournal journal(ctx.config.state_dir + "/install-journal.json");
    bundle::InstallOptions options;
    options.apply_diff = ota::delta::apply_diff;
    options.stop_requested = [&ctx] { return ctx.stopping(); };
    options.checkpoint_bytes = ctx.config.install_checkpoint_bytes;
    uint64_t last_percent = 101;
    options.progress = [&](uint64_t done, uint64_t total) {
        uint64_t percent = total ? done * 100 / total : 100;
        if (percent != last_percent && (percent % 10 == 0 || done == total)) {
            last_percent = percent;
            ctx.emit("write", std::to_string(percent) + "%", done, total);
        }
    };
    auto result = bundle::install_bundle(bf, source.get(), *target, journal, options);
    if (result.skipped)
        ctx.emit("write",
                 "resumed after " + std::to_string(result.skipped) + " completed operations");
    ctx.emit("verify", "slot " + target_slot + " verified end to end (SHA-256 " +
                           t.image_sha256.substr(0, 16) + "...)");
    journal.clear();
}

void stage_model(const StepContext& ctx, const BundleTarget& t, const bundle::BlobSource& bf) {
    ctx.emit("write",
             "installing model " + t.component + " version " + std::to_string(t.version) +
                 " into " + ctx.store->version_dir(t.component, t.version),
             0, t.image_length);
    bundle::InstallJournal journal(ctx.config.state_dir + "/model-journal-" + t.component +
                                   ".json");
    bundle::InstallOptions options;
    options.apply_diff = ota::delta::apply_diff;
    options.stop_requested = [&ctx] { return ctx.stopping(); };
    options.checkpoint_bytes = ctx.config.install_checkpoint_bytes;
    options.progress = [&](uint64_t done, uint64_t total) {
        if (done == total) ctx.emit("write", "100%", done, total);
    };
    ctx.store->stage(t.component, t.version, bf, journal, options);
    ctx.emit("verify", "model " + t.component + " version " + std::to_string(t.version) +
                           " verified end to end (SHA-256 " + t.image_sha256.substr(0, 16) +
                           "...)");
}

} // namespace

std::string inactive_slot(const StepContext& ctx, const std::string& booted) {
    if (!ctx.platform.slots.count(booted))
        throw Error(ErrorKind::Config, "booted slot \"" + booted + "\" is not configured");
    for (const auto& [name, device] : ctx.platform.slots)
        if (name != booted) return name;
    throw Error(ErrorKind::Config, "no inactive slot");
}

namespace {

void stage_source(const StepContext& ctx, const BundleTarget& t, const bundle::BlobSource& bundle,
                  AgentState& state) {
    if (t.kind != "firmware") return stage_model(ctx, t, bundle);
    const std::string active = ctx.platform.boot->booted_slot();
    stage_firmware(ctx, t, bundle, state, active, inactive_slot(ctx, active));
}

void require_model_store(const StepContext& ctx, const BundleTarget& t) {
    if (t.kind != "firmware" && !ctx.store)
        throw Error(ErrorKind::Config, "model " + t.component + ": no models.store configured");
}

} // namespace

void stage_bundle(const StepContext& ctx, const BundleTarget& t, const std::string& bundle_path,
                  AgentState& state) {
    require_model_store(ctx, t);
    stage_source(ctx, t, open_signed_bundle(t, bundle_path), state);
}

void stage_bundle_streamed(const StepContext& ctx, const BundleTarget& t, const std::string& url,
                           AgentState& state) {
    require_model_store(ctx, t);
    const TargetHash hash = strongest_hash(t.target);
    ctx.emit("download", "streaming " + t.target.path + " into place (no copy on disk)", 0,
             t.target.length);
    auto stream =
        bundle::BundleStream::open(ctx.fetcher, {url, t.target.length, hash.algorithm, hash.hex,
                                                 t.header_sha256, t.header_length});
    check_signed_image(t, *stream);
    stage_source(ctx, t, *stream, state);
    if (stream->whole_file_checked())
        ctx.emit("verify", "bundle matched its signed length and " + hash.label + " (" +
                               std::to_string(stream->bytes_received()) + " bytes streamed)");
    else
        ctx.emit("verify", "resumed stream: the bytes before the resume point were checked blob "
                           "by blob under the signed header hash (" +
                               std::to_string(stream->bytes_received()) + " bytes streamed)");
}

} // namespace ota::update
