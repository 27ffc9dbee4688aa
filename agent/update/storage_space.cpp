#include "agent/update/storage_space.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/update/download.h"

#include <cerrno>
#include <cstring>
#include <ftw.h>
#include <map>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace ota::update {

namespace {

// The path itself or its nearest ancestor that exists: what a new file there will live on.
std::string existing_ancestor(std::string path) {
    struct stat st {};
    while (::stat(path.c_str(), &st) != 0) {
        const std::string parent = parent_directory(path);
        if (parent == path) break;
        path = parent;
    }
    return path;
}

thread_local uint64_t g_walk_total = 0;
int add_allocated(const char*, const struct stat* st, int type, struct FTW*) {
    if (type == FTW_F) g_walk_total += static_cast<uint64_t>(st->st_blocks) * 512;
    return 0;
}

} // namespace

uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return 0;
    if (!S_ISDIR(st.st_mode)) return static_cast<uint64_t>(st.st_blocks) * 512;
    g_walk_total = 0;
    ::nftw(path.c_str(), add_allocated, 16, FTW_PHYS);
    return g_walk_total;
}

std::vector<SpaceNeed> plan_space_needs(const Plan& plan, const std::string& download_dir,
                                        size_t already_downloaded,
                                        const models::ModelStore* store) {
    std::vector<SpaceNeed> needs;
    for (size_t i = 0; i < plan.items.size(); ++i) {
        const BundleTarget& t = plan.items[i].chosen;
        if (i >= already_downloaded) {
            const std::string path = join_path(download_dir, bundle_file_name(t));
            const uint64_t have = file_exists(path) ? file_size(path) : 0;
            needs.push_back({path, t.target.length > have ? t.target.length - have : 0});
        }
        if (t.kind == "model" && store && !store->is_staged(t.component, t.version) &&
            store->current_version(t.component) != t.version) {
            const std::string partial = store->version_dir(t.component, t.version) + ".partial";
            const uint64_t have = allocated_bytes(partial);
            needs.push_back({partial, t.image_length > have ? t.image_length - have : 0});
        }
    }
    return needs;
}

void require_free_space(const std::vector<SpaceNeed>& needs, uint64_t reserve) {
    struct Filesystem {
        std::string measured; // where statvfs looks
        uint64_t bytes = 0;
        const SpaceNeed* largest = nullptr; // named first in the error
        std::string detail;                 // every need on it
    };
    std::map<dev_t, Filesystem> by_device;
    for (const auto& n : needs) {
        const std::string at = existing_ancestor(n.path);
        struct stat st {};
        if (::stat(at.c_str(), &st) != 0)
            throw Error(ErrorKind::Io, "stat " + at + ": " + std::strerror(errno));
        Filesystem& fs = by_device[st.st_dev];
        if (fs.measured.empty()) fs.measured = at;
        fs.bytes += n.bytes;
        if (!fs.largest || n.bytes > fs.largest->bytes) fs.largest = &n;
        fs.detail += (fs.detail.empty() ? "" : ", ") + n.path + " " + std::to_string(n.bytes);
    }
    for (const auto& [dev, fs] : by_device) {
        struct statvfs sv {};
        if (::statvfs(fs.measured.c_str(), &sv) != 0)
            throw Error(ErrorKind::Io, "statvfs " + fs.measured + ": " + std::strerror(errno));
        const uint64_t free_bytes = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
        if (fs.bytes > free_bytes || free_bytes - fs.bytes < reserve)
            throw Error(ErrorKind::Io,
                        fs.largest->path + ": " + std::strerror(ENOSPC) + ": the update needs " +
                            std::to_string(fs.bytes) + " bytes on this filesystem (" + fs.detail +
                            ") and " + std::to_string(reserve) +
                            " more must stay free (limits.storage_reserve_bytes), " +
                            std::to_string(free_bytes) + " bytes are free; nothing was written");
    }
}

RemoveUnlessKept::~RemoveUnlessKept() {
    if (path_.empty()) return;
    if (::unlink(path_.c_str()) == 0)
        LOG_INFO("removed " << path_ << ": the attempt it was downloaded for failed");
}

} // namespace ota::update
