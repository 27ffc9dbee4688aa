// Install progress that survives a power cut: a small JSON file replaced atomically (write a
// temporary file, fsync, rename, fsync the directory). The installer syncs the target slot BEFORE
// it records that ops up to next_op are done, so the journal never claims more than is on disk.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace ota::bundle {

struct JournalState {
    std::string header_sha256; // the bundle being installed
    std::string target;        // path of the target device, so a journal is never reused elsewhere
    uint64_t next_op = 0;      // ops [0, next_op) are durable on the target
    bool complete = false;     // every op written AND the whole target verified
};

class InstallJournal {
public:
    explicit InstallJournal(std::string path) : path_(std::move(path)) {}
    virtual ~InstallJournal() = default;
    // nullopt when there is no journal, or it is unreadable/malformed (then it is ignored: the
    // install starts over, which is always safe).
    virtual std::optional<JournalState> load() const;
    virtual void save(const JournalState& state);
    virtual void clear();
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

} // namespace ota::bundle
