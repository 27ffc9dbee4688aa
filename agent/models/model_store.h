// The model store on the data partition. Each model has its own folder:
//
//   ROOT/NAME/7/                  version 7's files (read-only once installed)
//   ROOT/NAME/7.manifest.json     its files list and image hash (written before the folder appears)
//   ROOT/NAME/8.partial/          version 8 being written (resumable; never used by anything)
//   ROOT/NAME/current -> 8        the active version: ONE symlink, replaced by rename(2)
//   ROOT/NAME/previous -> 7       what `current` was before: the rollback target
//   ROOT/NAME/trial -> 8          present while version 8 is activated but not yet committed
//
// Applications open ROOT/NAME/current/... and see either the old or the new version, never a mix.
// Every link change is a rename of a fresh symlink plus an fsync of the folder, so a power cut
// leaves the old or the new link. A `trial` link found at start-up means the health check never
// finished: recover() rolls that model back.
#pragma once
#include "agent/bundle/format.h"
#include "agent/bundle/installer.h"
#include "agent/bundle/reader.h"
#include "hal/block_device.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ota::models {

struct ModelManifest {
    std::string name;
    uint64_t version = 0;
    uint64_t image_length = 0;
    std::string image_sha256;
    std::vector<bundle::FileEntry> files;
};

// Model names: 1-64 of [A-Za-z0-9._-], not starting with '.'. Throws Error(Malformed).
void check_model_name(const std::string& name);

class ModelStore {
public:
    explicit ModelStore(std::string root);
    const std::string& root() const { return root_; }

    std::vector<std::string> models() const; // names with a folder in the store
    std::optional<uint64_t> current_version(const std::string& name) const;
    std::optional<uint64_t> previous_version(const std::string& name) const;
    std::optional<uint64_t> trial_version(const std::string& name) const;
    std::string model_dir(const std::string& name) const;
    std::string version_dir(const std::string& name, uint64_t version) const;
    std::string current_path(const std::string& name) const; // ROOT/NAME/current
    std::optional<ModelManifest> manifest(const std::string& name, uint64_t version) const;
    bool is_staged(const std::string& name, uint64_t version) const;
    // Re-reads a version's files and matches them against its manifest: each file present with
    // its length, then the SHA-256 of the whole image. Returns what is wrong (nullopt: intact).
    std::optional<std::string> verify(const std::string& name, uint64_t version) const;

    // The installed current version as one read-only image (the source of a model delta).
    // Throws Error(SourceMismatch) when there is none or its files are incomplete.
    std::unique_ptr<hal::BlockDevice> open_current_image(const std::string& name) const;

    // Writes a model bundle (payload_kind "model", a file or a stream) into NAME/VERSION.partial
    // through the verified streaming installer (every blob checked, whole image hashed at the
    // end), then publishes it as NAME/VERSION with its manifest. Does not activate. Resumes
    // through `journal`; after a storage failure (disk full) the partial folder is removed so it
    // holds no space.
    void stage(const std::string& name, uint64_t version, const bundle::BlobSource& bundle,
               bundle::InstallJournal& journal, const bundle::InstallOptions& options);

    // previous <- current, trial <- version, current <- version. The version must be staged and
    // intact (verify()); a corrupt one is refused with Error(HashMismatch), nothing changed.
    void activate(const std::string& name, uint64_t version);
    // The trial version passed its health check: drop the trial marker and delete versions
    // other than current and previous.
    void commit(const std::string& name);
    // current <- previous (or no current if there was none); the abandoned version is deleted.
    // Returns the version that was current, nullopt if there was nothing to roll back. A previous
    // version whose files no longer match its manifest is never activated: Error(HashMismatch),
    // nothing changed.
    std::optional<uint64_t> rollback(const std::string& name);
    // Start-up: roll back every model whose activation was not committed. Returns their names.
    std::vector<std::string> recover();
    // Deletes staged versions that never became current/previous (an abandoned release).
    void discard_staged(const std::string& name, uint64_t version);

private:
    std::optional<uint64_t> link_version(const std::string& name, const char* link) const;
    void set_link(const std::string& name, const char* link, uint64_t version);
    void remove_link(const std::string& name, const char* link);
    void collect_garbage(const std::string& name);

    std::string root_;
};

// Removes a folder tree (no symlinks followed). Missing = nothing to do.
void remove_tree(const std::string& path);

} // namespace ota::models
