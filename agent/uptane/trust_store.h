// Trusted metadata replaced as a whole, so that a refused update leaves it exactly as it was
// (Uptane: "the ECU SHALL retain its previous Targets metadata"). DIR/current is a symbolic link
// to DIR/gen-N; an update works on a copy (DIR/gen-N+1) and is published by renaming a new link
// over DIR/current, which is atomic. After a power cut either generation is current; the other is
// removed when the store is opened again.
#pragma once
#include <string>

namespace ota::uptane {

class TrustStore {
public:
    // Creates DIR and an empty first generation when there is none; removes stale generations.
    explicit TrustStore(std::string dir);

    // The live generation's folder.
    std::string current() const;
    // A new generation holding a copy of the current one (files and sub-folders).
    std::string stage();
    // Makes `staged` current (durably); the previous generation is deleted.
    void commit(const std::string& staged);
    void discard(const std::string& staged);

private:
    std::string link_target() const;
    std::string dir_;
};

// Removes a folder and everything below it (symbolic links are removed, never followed).
void remove_tree(const std::string& path);
// Copies regular files and folders below `from` into `to` (created), each file fsynced.
void copy_tree(const std::string& from, const std::string& to);

} // namespace ota::uptane
