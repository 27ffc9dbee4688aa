#include "agent/update/download.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <dirent.h>
#include <unistd.h>

namespace ota::update {

std::string bundle_file_name(const BundleTarget& t) {
    return strongest_hash(t.target).hex + ".bundle";
}

void remove_other_downloads(const StepContext& ctx, const std::set<std::string>& keep) {
    const std::string dir = ctx.download_dir();
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != ".." && !keep.count(n)) ::unlink(join_path(dir, n).c_str());
        }
        ::closedir(d);
    }
}

std::string download_bundle(const StepContext& ctx, const SignedTargets& targets,
                            const BundleTarget& t, std::set<std::string> keep) {
    const std::string dir = ctx.download_dir();
    make_directories(dir);
    const std::string name = bundle_file_name(t);
    const std::string path = join_path(dir, name);
    // Only the bundles of the current attempt are kept: partial files of others are removed.
    keep.insert(name);
    remove_other_downloads(ctx, keep);

    uint64_t last_percent = 101;
    ctx.emit("download", "downloading " + t.target.path, 0, t.target.length);
    ctx.fetcher.fetch_to_file(
        targets.url(t.target), path, t.target.length, true, [&](uint64_t done, uint64_t total) {
            uint64_t percent = total ? done * 100 / total : 0;
            if (percent != last_percent && (percent % 10 == 0 || done == total)) {
                last_percent = percent;
                ctx.emit("download", std::to_string(percent) + "%", done, total);
            }
        });
    const TargetHash hash = strongest_hash(t.target);
    ctx.emit("verify",
             "checking the bundle against the signed target (length and " + hash.label + ")");
    const uint64_t size = file_size(path);
    if (size != t.target.length ||
        !equal_constant_time(file_hash_hex(path, hash.algorithm), hash.hex)) {
        ::unlink(path.c_str());
        throw Error(ErrorKind::HashMismatch, "downloaded bundle " + t.target.path + " (" +
                                                 std::to_string(size) +
                                                 " bytes) does not match its signed length and " +
                                                 hash.label + "; discarded");
    }
    return path;
}

} // namespace ota::update
