#include "agent/secondary/secondary_ecu.h"

#include "agent/bundle/installer.h"
#include "agent/bundle/journal.h"
#include "agent/bundle/reader.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "agent/common/log.h"
#include "agent/delta/diff.h"
#include "agent/tuf/trusted_set.h"
#include "agent/tuf/updater.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/partial_verification.h"
#include "agent/uptane/verification.h"
#include "hal/block_device.h"
#include "hal/linux_reboot.h"
#include "hal/uboot_boot_control.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace ota::secondary {

using namespace uptane;

namespace {

constexpr uint64_t kSyncEvery = 8ull << 20;

// Kinds of refusal that are attacks in Uptane's threat model (reported to the director).
bool is_attack(const std::exception& e) {
    const auto* err = dynamic_cast<const Error*>(&e);
    if (!err) return false;
    switch (err->kind()) {
    case ErrorKind::BadSignature:
    case ErrorKind::Rollback:
    case ErrorKind::Expired:
    case ErrorKind::HashMismatch:
    case ErrorKind::WrongHardware:
    case ErrorKind::TooLarge: return true;
    default: return false;
    }
}

std::string first_line(const std::string& path) {
    std::string s = read_file(path, 4096);
    auto end = s.find_first_of("\r\n");
    return end == std::string::npos ? s : s.substr(0, end);
}

// Streams a file through every listed hash; the length must match too.
void verify_file(const std::string& path, const ImageOffer& offer) {
    if (file_size(path) != offer.length)
        throw Error(ErrorKind::HashMismatch, offer.filepath + ": received " +
                                                 std::to_string(file_size(path)) + " bytes, " +
                                                 std::to_string(offer.length) + " instructed");
    std::map<std::string, Hasher> hashers;
    for (const auto& [alg, hex] : offer.hashes)
        hashers.emplace(alg,
                        Hasher(alg == "sha512" ? HashAlgorithm::Sha512 : HashAlgorithm::Sha256));
    UniqueFd fd = open_or_throw(path, O_RDONLY | O_CLOEXEC);
    std::vector<char> buf(1 << 20);
    while (size_t n = read_full(fd.get(), buf.data(), buf.size(), path))
        for (auto& [alg, h] : hashers)
            h.update(buf.data(), n);
    for (auto& [alg, h] : hashers)
        if (!equal_constant_time(h.finish_hex(), offer.hashes.at(alg)))
            throw Error(ErrorKind::HashMismatch,
                        offer.filepath + ": the received image does not match its " + alg);
}

const Json& custom_member(const tuf::TargetFile& t, const char* name) {
    if (!t.custom.is_object() || !t.custom.contains(name))
        throw Error(ErrorKind::Malformed,
                    "target " + t.path + ": custom field \"" + name + "\" is missing");
    return t.custom[name];
}

std::string custom_sha256(const Json& obj, const char* name, const std::string& what) {
    std::string s = require_string(obj, name, 64, what);
    if (s.size() != 64 || !is_hex(s))
        throw Error(ErrorKind::Malformed, what + ": \"" + name + "\" must be a SHA-256 in hex");
    return s;
}

int run_program(const std::vector<std::string>& command) {
    std::vector<char*> argv;
    std::vector<std::string> args = command;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid < 0) throw Error(ErrorKind::Io, std::string("fork failed: ") + std::strerror(errno));
    if (pid == 0) {
        ::execvp(argv[0], argv.data());
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) throw Error(ErrorKind::Io, "waitpid failed");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

} // namespace

SecondaryEcu::SecondaryEcu(SecondaryConfig config)
    : config_(std::move(config)), key_(SigningKey::from_pem(read_file(config_.key, 64 * 1024))) {
    make_directories(config_.state_dir);
    auto env = std::make_shared<hal::UBootEnv>(
        hal::UBootEnv::from_config_file(config_.boot.fw_env_config, config_.boot.lock_file));
    hal::UBootBootControlOptions options;
    options.slots.clear();
    for (const auto& [name, device] : config_.slots)
        options.slots.push_back(name);
    options.default_tries = config_.boot.tries;
    options.cmdline_path = config_.boot.cmdline;
    if (!config_.boot.booted_slot_file.empty()) {
        const std::string path = config_.boot.booted_slot_file;
        options.booted_slot_provider = [path] { return first_line(path); };
    }
    boot_ = std::make_unique<hal::UBootBootControl>(env, options);
    if (config_.verification == VerificationMode::Full) {
        RepositoryEndpoint director{"pushed://director/", "", config_.director_root,
                                    MetadataLimits::director()};
        RepositoryEndpoint image{"pushed://image/", "", config_.image_root,
                                 MetadataLimits::image()};
        repositories_ = std::make_unique<UptaneRepositories>(config_.trust_dir(), director, image);
    } else {
        partial_trust_ = std::make_unique<TrustStore>(config_.trust_dir());
    }
    state_ = load_state(file("state.json"), config_.installed_version);
    if (!file_exists(file("state.json"))) save(); // the factory state, explicit from the start
}

void SecondaryEcu::save() {
    save_state(file("state.json"), state_);
}

void SecondaryEcu::record_attack(const std::exception& e) {
    if (!is_attack(e)) return;
    state_.attacks_detected = std::string(e.what()).substr(0, kMaxMessageLength);
    save();
}

std::string SecondaryEcu::other_slot(const std::string& slot) const {
    for (const auto& [name, device] : config_.slots)
        if (name != slot) return name;
    throw Error(ErrorKind::Config, "no slot other than " + slot);
}

SecondaryInfo SecondaryEcu::info() const {
    SecondaryInfo i;
    i.ecu_serial = config_.ecu_serial;
    i.hardware_id = config_.hardware_id;
    i.verification = config_.verification;
    i.key = public_key_of(key_);
    auto root_version = [](const std::string& dir, const std::string& factory) {
        uint64_t v = trusted_root_version(dir);
        return v ? v : tuf::parse_envelope(read_file(factory, 1 << 20), "root").version;
    };
    if (repositories_) {
        i.director_root_version =
            root_version(repositories_->director_dir(), config_.director_root);
        i.image_root_version = root_version(repositories_->image_dir(), config_.image_root);
    } else {
        i.director_root_version =
            root_version(join_path(partial_trust_->current(), "director"), config_.director_root);
    }
    return i;
}

void SecondaryEcu::drop_image_files() {
    if (transfer_) transfer_.reset();
    for (const char* name : {"image.partial", "image.offer.json", "image.bundle"})
        remove_file_durable(file(name));
    state_.image_verified = false;
}

void SecondaryEcu::check_instruction(const tuf::TargetFile& target) const {
    const std::string what = "instruction " + target.path;
    if (custom_member(target, "kind") != "firmware")
        throw Error(ErrorKind::Unsupported, what + ": this ECU installs firmware only");
    const uint64_t version = release_counter(target);
    if (version < state_.installed_version)
        throw Error(ErrorKind::Rollback,
                    what + ": release counter " + std::to_string(version) + " is below the " +
                        std::to_string(state_.installed_version) + " installed");
    const Json& image = custom_member(target, "image");
    custom_sha256(image, "sha256", what + " image");
    require_uint(image, "length", what + " image");
    const Json& bundle_info = custom_member(target, "bundle");
    custom_sha256(bundle_info, "header_sha256", what + " bundle");
    require_uint(bundle_info, "header_length", what + " bundle");
}

std::optional<ImageOffer> SecondaryEcu::accept_instruction(std::optional<tuf::TargetFile> target) {
    if (target && state_.installed && state_.installed->filepath == target->path &&
        state_.installed->hashes == target->hashes)
        target.reset(); // already running it: nothing to do
    const bool same = target && state_.instruction && state_.instruction->path == target->path &&
                      state_.instruction->hashes == target->hashes &&
                      state_.instruction->length == target->length;
    if (!same) {
        if (state_.staged) {
            bundle::InstallJournal(file("install-journal.json")).clear();
            state_.staged.reset(); // its slot stays marked bad: it was never switched to
        }
        drop_image_files();
        state_.instruction = target;
    }
    save();
    if (!target) return std::nullopt;
    return offer_of(*target);
}

std::optional<ImageOffer> SecondaryEcu::verify_full(const SecondaryMetadata& m) {
    if (!m.image)
        throw Error(ErrorKind::Malformed,
                    "full verification needs the image repository's metadata too");
    PushedFetcher director(m.director, "pushed://director/");
    PushedFetcher image(*m.image, "pushed://image/");
    VerificationResult result = repositories_->refresh_and_verify(
        director, image, config_.vehicle_id, {{config_.ecu_serial, config_.hardware_id}}, false,
        [&](const VerificationResult& r) {
            if (auto it = r.targets.find(config_.ecu_serial); it != r.targets.end()) {
                tuf::TargetFile t = it->second.director;
                t.custom = it->second.image.custom;
                check_instruction(t);
            }
        });
    auto it = result.targets.find(config_.ecu_serial);
    if (it == result.targets.end()) return accept_instruction(std::nullopt);
    // The director's name, length and hashes; the image repository's custom fields.
    tuf::TargetFile target = it->second.director;
    target.custom = it->second.image.custom;
    return accept_instruction(target);
}

std::optional<ImageOffer> SecondaryEcu::verify_partial(const SecondaryMetadata& m) {
    const std::string dir = join_path(partial_trust_->current(), "director");
    PartialTrust trusted;
    const std::string root = join_path(dir, "root.json");
    trusted.root = read_file(file_exists(root) ? root : config_.director_root, 1 << 20);
    if (file_exists(join_path(dir, "targets.json")))
        trusted.targets =
            read_file(join_path(dir, "targets.json"), MetadataLimits::director().targets);
    PartialResult result = uptane::verify_partial(trusted, m.director, tuf::system_time_now());
    if (config_.vehicle_id && result.director.vehicle_id &&
        *result.director.vehicle_id != *config_.vehicle_id)
        throw Error(ErrorKind::WrongHardware, "director targets are for vehicle " +
                                                  *result.director.vehicle_id + ", this is " +
                                                  *config_.vehicle_id);
    std::optional<tuf::TargetFile> target;
    if (const EcuInstruction* i = result.director.for_ecu(config_.ecu_serial)) {
        if (i->hardware_id != config_.hardware_id)
            throw Error(ErrorKind::WrongHardware, "director instructs " + i->target.path +
                                                      " for hardware " + i->hardware_id +
                                                      ", this ECU is " + config_.hardware_id);
        const Json& hw = custom_member(i->target, "hardware_id");
        if (hw != config_.hardware_id)
            throw Error(ErrorKind::WrongHardware,
                        "director lists " + i->target.path + " as an image for other hardware");
        target = i->target;
    }
    if (target) check_instruction(*target);
    // Kept only now that every check passed (the instruction's too).
    const std::string staged = partial_trust_->stage();
    try {
        make_directories(join_path(staged, "director"));
        write_file_atomic(join_path(staged, "director/root.json"), result.trust.root);
        write_file_atomic(join_path(staged, "director/targets.json"), result.trust.targets);
        partial_trust_->commit(staged);
    } catch (...) {
        partial_trust_->discard(staged);
        throw;
    }
    return accept_instruction(target);
}

std::optional<ImageOffer> SecondaryEcu::put_metadata(const SecondaryMetadata& metadata) {
    if (state_.activated)
        throw Error(ErrorKind::State, "an update is switched to and waits for the reboot");
    try {
        return config_.verification == VerificationMode::Full ? verify_full(metadata)
                                                              : verify_partial(metadata);
    } catch (const std::exception& e) {
        record_attack(e);
        throw;
    }
}

uint64_t SecondaryEcu::image_begin(const ImageOffer& offer) {
    image_abandon();
    const auto& instr = state_.instruction;
    if (!instr)
        throw Error(ErrorKind::State, "no verified instruction for this ECU: push metadata first");
    if (offer.filepath != instr->path || offer.length != instr->length ||
        offer.hashes != instr->hashes) {
        Error e(ErrorKind::HashMismatch, "offered image " + offer.filepath.substr(0, 256) +
                                             " is not the one the director instructs this ECU "
                                             "to install (" +
                                             instr->path + ")");
        record_attack(e);
        throw e;
    }
    if (offer.length > config_.max_image_length)
        throw Error(ErrorKind::TooLarge, offer.filepath + " is larger than this ECU accepts");
    if (state_.image_verified) return offer.length;

    const std::string partial = file("image.partial"), offer_file = file("image.offer.json");
    uint64_t offset = 0;
    bool resume = false;
    try {
        resume = file_exists(offer_file) && file_exists(partial) &&
                 parse_bounded_json(read_file(offer_file, 64 * 1024), offer_file) ==
                     offer_to_json(offer) &&
                 file_size(partial) <= offer.length;
    } catch (const std::exception&) {
        resume = false;
    }
    if (resume) {
        offset = file_size(partial);
    } else {
        remove_file_durable(partial);
        write_file_atomic(offer_file, offer_to_json(offer).dump());
    }
    Transfer t;
    t.offer = offer;
    t.fd = open_or_throw(partial, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (!resume) fsync_directory(config_.state_dir);
    t.position = offset;
    transfer_ = std::move(t);
    return offset;
}

void SecondaryEcu::image_data(const char* data, size_t size) {
    if (!transfer_) throw Error(ErrorKind::State, "IMAGE_DATA without IMAGE_BEGIN");
    Transfer& t = *transfer_;
    if (!t.failure.empty()) return; // the rest of a refused stream is discarded
    try {
        if (size > t.offer.length - t.position)
            throw Error(ErrorKind::TooLarge, t.offer.filepath +
                                                 ": more bytes than its signed "
                                                 "length of " +
                                                 std::to_string(t.offer.length));
        pwrite_all(t.fd.get(), data, size, t.position, "image.partial");
        t.position += size;
        t.unsynced += size;
        if (t.unsynced >= kSyncEvery) {
            fsync_or_throw(t.fd.get(), "image.partial");
            t.unsynced = 0;
        }
    } catch (const std::exception& e) {
        t.failure = e.what();
        record_attack(e);
    }
}

void SecondaryEcu::image_end() {
    if (state_.image_verified && !transfer_) return;
    if (!transfer_) throw Error(ErrorKind::State, "IMAGE_END without IMAGE_BEGIN");
    Transfer t = std::move(*transfer_);
    transfer_.reset();
    if (!t.failure.empty()) throw Error(ErrorKind::TooLarge, t.failure);
    if (t.position != t.offer.length)
        throw Error(ErrorKind::Malformed, t.offer.filepath + ": the image ended after " +
                                              std::to_string(t.position) + " of " +
                                              std::to_string(t.offer.length) + " bytes");
    fsync_or_throw(t.fd.get(), "image.partial");
    t.fd = UniqueFd();
    try {
        verify_file(file("image.partial"), t.offer);
    } catch (const std::exception& e) {
        remove_file_durable(file("image.partial"));
        remove_file_durable(file("image.offer.json"));
        record_attack(e);
        throw;
    }
    rename_durable(file("image.partial"), file("image.bundle"));
    remove_file_durable(file("image.offer.json"));
    state_.image_verified = true;
    save();
}

void SecondaryEcu::image_abandon() {
    if (!transfer_) return;
    ::fsync(transfer_->fd.get()); // best effort: the hashes are checked at the end anyway
    transfer_.reset();
}

std::string SecondaryEcu::install(const std::string& filepath) {
    if (state_.activated) throw Error(ErrorKind::State, "an update is already switched to");
    if (!state_.instruction || state_.instruction->path != filepath)
        throw Error(ErrorKind::State, filepath.substr(0, 256) + " is not the instructed image");
    if (!state_.image_verified)
        throw Error(ErrorKind::State, "the image of " + filepath + " has not been received");
    const tuf::TargetFile& t = *state_.instruction;
    const std::string what = "target " + t.path;
    const Json& image = custom_member(t, "image");
    const Json& bundle_info = custom_member(t, "bundle");
    const std::string image_sha256 = custom_sha256(image, "sha256", what + " image");
    const uint64_t image_length = require_uint(image, "length", what + " image");
    bundle::BundleFile bf = bundle::BundleFile::open(
        file("image.bundle"), custom_sha256(bundle_info, "header_sha256", what + " bundle"),
        require_uint(bundle_info, "header_length", what + " bundle"));
    if (bf.header().target_sha256 != image_sha256 || bf.header().target_size != image_length)
        throw Error(ErrorKind::HashMismatch,
                    "bundle header describes a different image than the signed target");
    if (bf.header().payload_kind != "firmware")
        throw Error(ErrorKind::Malformed, what + " is not a firmware bundle");

    const std::string booted = boot_->booted_slot();
    if (!config_.slots.count(booted))
        throw Error(ErrorKind::Config, "booted slot \"" + booted + "\" is not configured");
    const std::string target_slot = other_slot(booted);
    // A half-written slot must never be bootable: marked bad before the first write.
    if (!state_.staged || state_.staged->slot != target_slot ||
        state_.staged->target.path != t.path) {
        boot_->mark_bad(target_slot);
        state_.staged = SlotChange{target_slot, booted, t, false};
        save();
    }
    auto target = hal::open_block_device(config_.slots.at(target_slot), true);
    std::unique_ptr<hal::BlockDevice> source;
    if (bf.header().source) source = hal::open_block_device(config_.slots.at(booted), false);
    bundle::InstallJournal journal(file("install-journal.json"));
    bundle::InstallOptions options;
    options.apply_diff = ota::delta::apply_diff;
    bundle::install_bundle(bf, source.get(), *target, journal, options);
    journal.clear();
    state_.staged->written = true;
    save();
    LOG_INFO("slot " << target_slot << " written and verified (" << t.path << ")");
    return target_slot;
}

void SecondaryEcu::activate() {
    // Already switched (a primary that restarted during the activation asks again): same result.
    if (state_.activated && !state_.staged) return;
    if (!state_.staged || !state_.staged->written)
        throw Error(ErrorKind::State, "no written slot to switch to");
    boot_->set_primary(state_.staged->slot, config_.boot.tries);
    state_.activated = state_.staged;
    state_.staged.reset();
    save();
}

void SecondaryEcu::reboot() {
    hal::LinuxRebooter(config_.reboot_command).reboot();
}

void SecondaryEcu::abort() {
    if (state_.activated)
        throw Error(ErrorKind::State, "the update is already switched to; it cannot be aborted");
    if (state_.staged || state_.instruction)
        state_.last_result = UpdateResult{
            false, state_.instruction ? state_.instruction->path : state_.staged->target.path,
            "aborted by the primary"};
    bundle::InstallJournal(file("install-journal.json")).clear();
    state_.staged.reset();
    drop_image_files();
    save();
}

bool SecondaryEcu::healthy(std::string* message) {
    if (config_.health_check.empty()) return true;
    int status = run_program(config_.health_check);
    if (status != 0) *message = "health check exited with status " + std::to_string(status);
    return status == 0;
}

void SecondaryEcu::boot_check() {
    const std::string booted = boot_->booted_slot();
    if (state_.activated) {
        const SlotChange change = *state_.activated;
        if (booted == change.slot) {
            std::string message;
            if (healthy(&message)) {
                boot_->mark_good(booted);
                const tuf::TargetFile& t = change.target;
                InstalledImage installed;
                installed.filepath = t.path;
                installed.length = t.length;
                installed.hashes = t.hashes;
                installed.image_length = custom_member(t, "image").value("length", uint64_t{0});
                installed.image_sha256 = custom_member(t, "image").value("sha256", std::string());
                state_.installed = installed;
                state_.installed_version = release_counter(t);
                state_.last_result = UpdateResult{true, t.path, "running slot " + booted};
                state_.activated.reset();
                state_.instruction.reset();
                drop_image_files();
                save();
                LOG_INFO("committed " << t.path << " on slot " << booted);
                return;
            }
            boot_->mark_bad(change.slot);
            boot_->set_primary(change.from_slot, config_.boot.tries);
            state_.last_result =
                UpdateResult{false, change.target.path, message + " on slot " + change.slot};
            state_.activated.reset();
            save();
            LOG_WARN("slot " << change.slot << " failed its health check; back to "
                             << change.from_slot);
            reboot();
            return;
        }
        const hal::BootState bs = boot_->state();
        auto left = bs.tries_left.find(change.slot);
        if (!bs.order.empty() && bs.order.front() == change.slot && left != bs.tries_left.end() &&
            left->second > 0) {
            LOG_INFO("slot " << change.slot << " waits for the reboot");
            return;
        }
        boot_->mark_bad(change.slot);
        state_.last_result =
            UpdateResult{false, change.target.path,
                         "slot " + change.slot + " did not come up; running slot " + booted};
        state_.activated.reset();
        save();
        LOG_WARN("slot " << change.slot << " did not come up; the bootloader fell back to "
                         << booted);
    }
    if (config_.slots.count(booted)) boot_->mark_good(booted);
}

Json SecondaryEcu::version_report(const std::string& nonce) {
    EcuVersionReport r;
    r.ecu_serial = config_.ecu_serial;
    r.hardware_id = config_.hardware_id;
    r.installed = state_.installed;
    r.installed_version = state_.installed_version;
    r.attacks_detected = state_.attacks_detected;
    r.time = tuf::system_time_now();
    r.counter = ++state_.report_counter;
    r.nonce = nonce;
    if (state_.activated)
        r.pending = state_.activated->target.path;
    else if (state_.staged)
        r.pending = state_.staged->target.path;
    r.last_result = state_.last_result;
    // The counter is durable before the report leaves, so no two reports share one.
    state_.attacks_detected.clear(); // reported once
    save();
    return sign_report(r, key_);
}

} // namespace ota::secondary
