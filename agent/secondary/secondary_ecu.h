// A secondary ECU's side of Uptane, independent of the transport: it verifies the metadata its
// primary pushes (full or partial verification), receives the instructed image (resumable,
// bounded by the signed length, verified before use), writes its inactive slot with the bundle
// installer, switches only when told to, checks the boot, and signs its version reports.
//
// Files in state_dir: state.json (SecondaryState), trust/ (TrustStore of the director's and, for
// full verification, the image repository's metadata), image.partial + image.offer.json (an image
// being received), image.bundle (the received, verified image), install-journal.json.
#pragma once
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "agent/secondary/config.h"
#include "agent/secondary/state.h"
#include "agent/uptane/messages.h"
#include "agent/uptane/pushed_metadata.h"
#include "agent/uptane/repositories.h"
#include "hal/boot_control.h"

#include <memory>
#include <optional>
#include <string>

namespace ota::secondary {

class SecondaryEcu {
public:
    explicit SecondaryEcu(SecondaryConfig config);

    // At start-up: an activated update is committed after a good boot of its slot (health check
    // passed), or recorded as failed when the bootloader fell back or the check failed. Without
    // one, the booted slot is marked good (keeps its boot tries).
    void boot_check();

    uptane::SecondaryInfo info() const;
    // Verifies the pushed metadata and keeps it only if every check passes. Returns the
    // instruction for this ECU (nullopt: nothing to install, e.g. it already runs it).
    std::optional<uptane::ImageOffer> put_metadata(const uptane::SecondaryMetadata& metadata);

    // Image transfer. begin() answers how many bytes are already here (resume); data() appends in
    // order; end() checks length and hashes against the instruction. A failure in data() is kept
    // and reported by end() (the rest of the stream is discarded).
    uint64_t image_begin(const uptane::ImageOffer& offer);
    void image_data(const char* data, size_t size);
    void image_end();
    // The connection ended: keep what arrived (synced) for the next begin().
    void image_abandon();

    // Writes and verifies the inactive slot; returns its name. Nothing is switched.
    std::string install(const std::string& filepath);
    // Switches the boot order to the written slot (again: nothing changes). Call reboot() once
    // the answer is sent.
    void activate();
    void reboot();
    void abort();
    Json version_report(const std::string& nonce);

    const SecondaryState& state() const { return state_; }
    const SecondaryConfig& config() const { return config_; }

private:
    struct Transfer {
        uptane::ImageOffer offer;
        UniqueFd fd;
        uint64_t position = 0;
        uint64_t unsynced = 0;
        std::string failure; // set when data() refused a chunk
    };

    void save();
    void record_attack(const std::exception& e);
    // The ECU's own rules for an instruction: firmware, release counter not below the installed
    // one, well-formed image and bundle fields.
    void check_instruction(const tuf::TargetFile& target) const;
    std::optional<uptane::ImageOffer> accept_instruction(std::optional<tuf::TargetFile> target);
    std::optional<uptane::ImageOffer> verify_full(const uptane::SecondaryMetadata& metadata);
    std::optional<uptane::ImageOffer> verify_partial(const uptane::SecondaryMetadata& metadata);
    void drop_image_files();
    std::string file(const std::string& name) const { return join_path(config_.state_dir, name); }
    std::string other_slot(const std::string& slot) const;
    bool healthy(std::string* message);

    SecondaryConfig config_;
    SigningKey key_;
    std::unique_ptr<hal::BootControl> boot_;
    std::unique_ptr<uptane::UptaneRepositories> repositories_; // full verification
    std::unique_ptr<uptane::TrustStore> partial_trust_;        // partial verification
    SecondaryState state_;
    std::optional<Transfer> transfer_;
};

} // namespace ota::secondary
