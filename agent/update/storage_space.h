// Free space, checked before an update writes anything: the signed lengths say how much the
// downloads and the model store will need, so an update that cannot fit is refused at once with
// the path named, instead of filling the data partition and leaving it full.
#pragma once
#include "agent/update/target_selection.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ota::update {

// `bytes` are to be written at `path` (a file or folder that need not exist yet).
struct SpaceNeed {
    std::string path;
    uint64_t bytes = 0;
};

// What a plan will write: each bundle not downloaded yet (its signed length less the bytes of a
// partial download), each model not staged yet (its signed image length less what its .partial
// folder holds). Firmware goes to a slot, which has its own fixed size.
std::vector<SpaceNeed> plan_space_needs(const Plan& plan, const std::string& download_dir,
                                        size_t already_downloaded, const models::ModelStore* store);

// Needs on the same filesystem add up; each filesystem must keep `reserve` bytes free after
// them. Throws Error(Io) naming the path, the need and the free space otherwise.
void require_free_space(const std::vector<SpaceNeed>& needs, uint64_t reserve);

// Bytes the files under `path` occupy on disk (0 when it does not exist).
uint64_t allocated_bytes(const std::string& path);

// Removes a file the agent created, when the attempt it was made for fails before `keep()`.
class RemoveUnlessKept {
public:
    explicit RemoveUnlessKept(std::string path) : path_(std::move(path)) {}
    ~RemoveUnlessKept();
    RemoveUnlessKept(const RemoveUnlessKept&) = delete;
    RemoveUnlessKept& operator=(const RemoveUnlessKept&) = delete;
    void keep() { path_.clear(); }

private:
    std::string path_;
};

} // namespace ota::update
