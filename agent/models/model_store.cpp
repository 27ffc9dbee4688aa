#include "agent/models/model_store.h"

#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/models/file_set_device.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ota::models {

namespace {

std::optional<uint64_t> parse_version(const std::string& s) {
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string::npos)
        return std::nullopt;
    return std::stoull(s);
}

int remove_entry(const char* path, const struct stat*, int, struct FTW*) {
    return ::remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

} // namespace

void check_model_name(const std::string& name) {
    if (name.empty() || name.size() > 64 || name.front() == '.' ||
        name.find_first_not_of(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
            std::string::npos)
        throw Error(ErrorKind::Malformed,
                    "model name \"" + name +
                        "\" must be 1-64 of [A-Za-z0-9._-], not starting with '.'");
}

void remove_tree(const std::string& path) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return;
    if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        throw Error(ErrorKind::Io, "cannot remove " + path + ": " + std::strerror(errno));
}

ModelStore::ModelStore(std::string root) : root_(std::move(root)) {}

std::string ModelStore::model_dir(const std::string& name) const {
    check_model_name(name);
    return join_path(root_, name);
}
std::string ModelStore::version_dir(const std::string& name, uint64_t version) const {
    return join_path(model_dir(name), std::to_string(version));
}
std::string ModelStore::current_path(const std::string& name) const {
    return join_path(model_dir(name), "current");
}

std::vector<std::string> ModelStore::models() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(root_.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n.empty() || n[0] == '.') continue;
        try {
            check_model_name(n);
            out.push_back(n);
        } catch (const Error&) {
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

std::optional<uint64_t> ModelStore::link_version(const std::string& name, const char* link) const {
    char buf[64];
    const std::string p = join_path(model_dir(name), link);
    ssize_t n = ::readlink(p.c_str(), buf, sizeof buf - 1);
    if (n < 0) return std::nullopt;
    return parse_version(std::string(buf, static_cast<size_t>(n)));
}

std::optional<uint64_t> ModelStore::current_version(const std::string& name) const {
    return link_version(name, "current");
}
std::optional<uint64_t> ModelStore::previous_version(const std::string& name) const {
    return link_version(name, "previous");
}
std::optional<uint64_t> ModelStore::trial_version(const std::string& name) const {
    return link_version(name, "trial");
}

void ModelStore::set_link(const std::string& name, const char* link, uint64_t version) {
    const std::string dir = model_dir(name);
    const std::string tmp = join_path(dir, std::string(".") + link + ".new");
    ::unlink(tmp.c_str());
    if (::symlink(std::to_string(version).c_str(), tmp.c_str()) != 0)
        throw Error(ErrorKind::Io, "cannot create symlink " + tmp + ": " + std::strerror(errno));
    rename_durable(tmp, join_path(dir, link)); // rename(2) replaces the old link atomically
}

void ModelStore::remove_link(const std::string& name, const char* link) {
    const std::string p = join_path(model_dir(name), link);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT)
        throw Error(ErrorKind::Io, "cannot remove " + p + ": " + std::strerror(errno));
    fsync_directory(model_dir(name));
}

std::optional<ModelManifest> ModelStore::manifest(const std::string& name, uint64_t version) const {
    const std::string p = version_dir(name, version) + ".manifest.json";
    if (!file_exists(p)) return std::nullopt;
    try {
        Json j = parse_json(read_file(p, 64ull << 20), p);
        ModelManifest m;
        m.name = j.at("name").get<std::string>();
        m.version = j.at("version").get<uint64_t>();
        m.image_length = j.at("image_length").get<uint64_t>();
        m.image_sha256 = j.at("image_sha256").get<std::string>();
        for (const auto& f : j.at("files"))
            m.files.push_back(
                bundle::FileEntry{f.at("path").get<std::string>(), f.at("offset").get<uint64_t>(),
                                  f.at("length").get<uint64_t>(), f.at("mode").get<uint32_t>()});
        check_file_layout(m.files, m.image_length);
        return m;
    } catch (const Json::exception& e) {
        throw Error(ErrorKind::Malformed, p + ": " + e.what());
    }
}

bool ModelStore::is_staged(const std::string& name, uint64_t version) const {
    struct stat st;
    return ::stat(version_dir(name, version).c_str(), &st) == 0 && S_ISDIR(st.st_mode) &&
           manifest(name, version).has_value();
}

std::optional<std::string> ModelStore::verify(const std::string& name, uint64_t version) const {
    const std::string what = "model " + name + " version " + std::to_string(version);
    std::optional<ModelManifest> m;
    try {
        m = manifest(name, version);
    } catch (const Error& e) {
        return what + ": unreadable manifest: " + e.what();
    }
    if (!m) return what + ": no manifest";
    const std::string dir = version_dir(name, version);
    for (const auto& f : m->files) {
        const std::string p = join_path(dir, f.path);
        struct stat st;
        if (::lstat(p.c_str(), &st) != 0) return what + ": " + p + " is missing";
        if (!S_ISREG(st.st_mode)) return what + ": " + p + " is not a regular file";
        if (static_cast<uint64_t>(st.st_size) != f.length)
            return what + ": " + p + " has " + std::to_string(st.st_size) + " bytes, not " +
                   std::to_string(f.length);
    }
    try {
        auto image = FileSetDevice::open(dir, m->files);
        Hasher hasher;
        std::vector<uint8_t> buf(1 << 20);
        for (uint64_t off = 0; off < image->size();) {
            const size_t n =
                static_cast<size_t>(std::min<uint64_t>(buf.size(), image->size() - off));
            image->read(off, buf.data(), n);
            hasher.update(buf.data(), n);
            off += n;
        }
        if (!equal_constant_time(hasher.finish_hex(), m->image_sha256))
            return what + ": its files do not match the SHA-256 of its manifest (" +
                   m->image_sha256.substr(0, 16) + "...): corrupted on disk";
    } catch (const Error& e) {
        return what + ": " + e.what();
    }
    return std::nullopt;
}

std::unique_ptr<hal::BlockDevice> ModelStore::open_current_image(const std::string& name) const {
    auto v = current_version(name);
    if (!v) throw Error(ErrorKind::SourceMismatch, "model " + name + " has no installed version");
    auto m = manifest(name, *v);
    if (!m)
        throw Error(ErrorKind::SourceMismatch,
                    "model " + name + " version " + std::to_string(*v) + " has no manifest");
    return FileSetDevice::open(version_dir(name, *v), m->files);
}

void ModelStore::stage(const std::string& name, uint64_t version, const bundle::BlobSource& bf,
                       bundle::InstallJournal& journal, const bundle::InstallOptions& options) {
    const bundle::Header& h = bf.header();
    if (h.payload_kind != "model")
        throw Error(ErrorKind::Malformed, "bundle for model " + name + " has payload_kind \"" +
                                              h.payload_kind + "\", not \"model\"");
    check_file_layout(h.files, h.target_size);
    if (current_version(name) == version || is_staged(name, version)) return;
    const std::string dir = model_dir(name);
    make_directories(dir);
    const std::string partial = version_dir(name, version) + ".partial";
    // A journal for another bundle means an older attempt: start that folder afresh.
    auto js = journal.load();
    if (!js || js->header_sha256 != bf.header_sha256()) remove_tree(partial);

    std::unique_ptr<hal::BlockDevice> source;
    if (h.source) source = open_current_image(name);
    try {
        auto target = FileSetDevice::create(partial, h.files);
        bundle::install_bundle(bf, source.get(), *target, journal, options);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Io) {
            // A full or failing disk: what was written would only hold on to the space the
            // agent's state needs. The next attempt starts this version afresh.
            LOG_WARN("removing " << partial << " after: " << e.what());
            try {
                journal.clear();
                remove_tree(partial);
            } catch (const Error& cleanup) {
                LOG_WARN("cannot remove " << partial << ": " << cleanup.what());
            }
        }
        throw;
    }
    // The installer read every byte back and matched target_sha256. Modes now, then publish.
    for (const auto& f : h.files) {
        const std::string p = join_path(partial, f.path);
        if (::chmod(p.c_str(), f.mode) != 0)
            throw Error(ErrorKind::Io, "cannot chmod " + p + ": " + std::strerror(errno));
    }
    // Folders created for nested paths must be durable before the rename publishes them.
    for (const auto& f : h.files)
        fsync_directory(parent_directory(join_path(partial, f.path)));
    fsync_directory(partial);

    Json files = Json::array();
    for (const auto& f : h.files)
        files.push_back(
            Json{{"path", f.path}, {"offset", f.offset}, {"length", f.length}, {"mode", f.mode}});
    Json m{{"name", name},
           {"version", version},
           {"image_length", h.target_size},
           {"image_sha256", h.target_sha256},
           {"files", files}};
    write_file_atomic(version_dir(name, version) + ".manifest.json", m.dump(1) + "\n");
    remove_tree(version_dir(name, version)); // a leftover without manifest is never trusted
    rename_durable(partial, version_dir(name, version));
    journal.clear();
}

void ModelStore::activate(const std::string& name, uint64_t version) {
    if (!is_staged(name, version))
        throw Error(ErrorKind::State, "model " + name + " version " + std::to_string(version) +
                                          " is not installed in the store");
    auto cur = current_version(name);
    if (cur == version && !trial_version(name)) return;
    if (auto problem = verify(name, version))
        throw Error(ErrorKind::HashMismatch, *problem + "; not activated");
    if (cur && cur != version) set_link(name, "previous", *cur);
    set_link(name, "trial", version);
    set_link(name, "current", version); // the one atomic switch applications see
}

void ModelStore::commit(const std::string& name) {
    remove_link(name, "trial");
    collect_garbage(name);
}

std::optional<uint64_t> ModelStore::rollback(const std::string& name) {
    auto cur = current_version(name);
    auto prev = previous_version(name);
    if (!cur) {
        remove_link(name, "trial");
        return std::nullopt;
    }
    if (prev && *prev != *cur) {
        if (auto problem = verify(name, *prev))
            throw Error(ErrorKind::HashMismatch, "cannot roll model " + name +
                                                     " back: " + *problem + "; version " +
                                                     std::to_string(*cur) + " stays current");
        set_link(name, "current", *prev);
    } else {
        remove_link(name, "current"); // first install: back to no model at all
    }
    remove_link(name, "previous");
    remove_link(name, "trial");
    collect_garbage(name);
    return cur;
}

std::vector<std::string> ModelStore::recover() {
    std::vector<std::string> rolled;
    for (const auto& name : models()) {
        auto trial = trial_version(name);
        if (!trial) continue;
        if (current_version(name) == trial) {
            LOG_WARN("model " << name << " version " << *trial
                              << " was activated but never committed: rolling back");
            rollback(name);
        } else {
            remove_link(name, "trial"); // the switch itself never happened
        }
        rolled.push_back(name);
    }
    return rolled;
}

void ModelStore::discard_staged(const std::string& name, uint64_t version) {
    if (current_version(name) == version || previous_version(name) == version) return;
    ::unlink((version_dir(name, version) + ".manifest.json").c_str());
    remove_tree(version_dir(name, version));
    remove_tree(version_dir(name, version) + ".partial");
    fsync_directory(model_dir(name));
}

void ModelStore::collect_garbage(const std::string& name) {
    const std::string dir = model_dir(name);
    auto cur = current_version(name), prev = previous_version(name), trial = trial_version(name);
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> doomed;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        std::string base = n;
        for (const char* suffix : {".manifest.json", ".partial"})
            if (base.size() > std::strlen(suffix) &&
                base.compare(base.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
                base.resize(base.size() - std::strlen(suffix));
        auto v = parse_version(base);
        if (!v || v == cur || v == prev || v == trial) continue;
        doomed.push_back(n);
    }
    ::closedir(d);
    for (const auto& n : doomed) {
        const std::string p = join_path(dir, n);
        if (n.size() > 14 && n.compare(n.size() - 14, 14, ".manifest.json") == 0)
            ::unlink(p.c_str());
        else
            remove_tree(p);
    }
    if (!doomed.empty()) fsync_directory(dir);
}

} // namespace ota::models
