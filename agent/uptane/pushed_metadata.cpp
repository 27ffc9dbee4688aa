#include "agent/uptane/pushed_metadata.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/updater.h"
#include "agent/uptane/json_fields.h"

#include <dirent.h>

namespace ota::uptane {

MetadataLimits MetadataLimits::director() {
    return MetadataLimits{};
}

MetadataLimits MetadataLimits::image() {
    MetadataLimits l;
    l.snapshot = 2ull << 20;
    l.targets = 8ull << 20;
    return l;
}

uint64_t RepositoryMetadata::total_size() const {
    uint64_t n = timestamp.size() + snapshot.size() + targets.size();
    for (const auto& [v, r] : roots)
        n += r.size();
    for (const auto& [name, d] : delegated)
        n += d.size();
    return n;
}

namespace {

Json repository_to_json(const RepositoryMetadata& m) {
    Json roots = Json::object();
    for (const auto& [version, bytes] : m.roots)
        roots[std::to_string(version)] = bytes;
    Json delegated = Json::object();
    for (const auto& [role, bytes] : m.delegated)
        delegated[role] = bytes;
    return Json{{"roots", roots},
                {"timestamp", m.timestamp},
                {"snapshot", m.snapshot},
                {"targets", m.targets},
                {"delegated", delegated}};
}

std::string bounded_file(const Json& obj, const char* name, uint64_t cap, const std::string& what) {
    return require_string(obj, name, static_cast<size_t>(cap), what);
}

RepositoryMetadata repository_from_json(const Json& j, const MetadataLimits& limits,
                                        const std::string& what) {
    require_only_keys(j, {"roots", "timestamp", "snapshot", "targets", "delegated"}, what);
    RepositoryMetadata m;
    const Json& roots = require_object(j, "roots", what);
    if (roots.size() > limits.max_roots)
        throw Error(ErrorKind::TooLarge,
                    what + ": more than " + std::to_string(limits.max_roots) + " roots");
    for (auto it = roots.begin(); it != roots.end(); ++it) {
        const std::string& key = it.key();
        if (key.empty() || key.size() > 19 ||
            key.find_first_not_of("0123456789") != std::string::npos)
            throw Error(ErrorKind::Malformed, what + ": root versions must be decimal numbers");
        if (!it->is_string() || it->get_ref<const std::string&>().size() > limits.root)
            throw Error(ErrorKind::TooLarge, what + ": root " + key +
                                                 " is not a string of at most " +
                                                 std::to_string(limits.root) + " bytes");
        m.roots[std::stoull(key)] = it->get<std::string>();
    }
    m.timestamp = bounded_file(j, "timestamp", limits.timestamp, what);
    m.snapshot = bounded_file(j, "snapshot", limits.snapshot, what);
    m.targets = bounded_file(j, "targets", limits.targets, what);
    const Json& delegated = require_object(j, "delegated", what);
    if (delegated.size() > limits.max_delegated)
        throw Error(ErrorKind::TooLarge, what + ": more than " +
                                             std::to_string(limits.max_delegated) +
                                             " delegated roles");
    for (auto it = delegated.begin(); it != delegated.end(); ++it) {
        if (it.key().empty() || it.key().size() > kMaxTargetNameLength)
            throw Error(ErrorKind::Malformed, what + ": bad delegated role name");
        if (!it->is_string() || it->get_ref<const std::string&>().size() > limits.delegated)
            throw Error(ErrorKind::TooLarge, what + ": delegated role is not a string of at most " +
                                                 std::to_string(limits.delegated) + " bytes");
        m.delegated[it.key()] = it->get<std::string>();
    }
    return m;
}

bool is_decimal(const std::string& s) {
    return !s.empty() && s.size() <= 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

// "N.NAME" or "NAME" -> NAME matches `filename`.
bool names_file(const std::string& requested, const std::string& filename) {
    if (requested == filename) return true;
    if (requested.size() <= filename.size() + 1) return false;
    const size_t dot = requested.size() - filename.size() - 1;
    return requested[dot] == '.' && requested.compare(dot + 1, std::string::npos, filename) == 0 &&
           is_decimal(requested.substr(0, dot));
}

} // namespace

Json metadata_to_json(const SecondaryMetadata& m) {
    return Json{{"director", repository_to_json(m.director)},
                {"image", m.image ? repository_to_json(*m.image) : Json(nullptr)}};
}

SecondaryMetadata metadata_from_json(const Json& j) {
    const std::string what = "pushed metadata";
    require_only_keys(j, {"director", "image"}, what);
    SecondaryMetadata m;
    m.director = repository_from_json(require_object(j, "director", what),
                                      MetadataLimits::director(), what + " (director)");
    const Json& image = require_member(j, "image", what);
    if (!image.is_null())
        m.image = repository_from_json(image, MetadataLimits::image(), what + " (image)");
    return m;
}

PushedFetcher::PushedFetcher(const RepositoryMetadata& metadata, std::string base_url)
    : metadata_(metadata), base_url_(std::move(base_url)) {}

std::string PushedFetcher::fetch(const std::string& url, uint64_t max_length) {
    if (url.compare(0, base_url_.size(), base_url_) != 0)
        throw Error(ErrorKind::NotFound, url + " was not pushed");
    const std::string name = url.substr(base_url_.size());
    const std::string* found = nullptr;
    if (name == "timestamp.json") {
        found = &metadata_.timestamp;
    } else if (names_file(name, "snapshot.json")) {
        found = &metadata_.snapshot;
    } else if (names_file(name, "targets.json")) {
        found = &metadata_.targets;
    } else if (name.size() > 10 && name.compare(name.size() - 10, 10, ".root.json") == 0 &&
               is_decimal(name.substr(0, name.size() - 10))) {
        auto it = metadata_.roots.find(std::stoull(name.substr(0, name.size() - 10)));
        if (it != metadata_.roots.end()) found = &it->second;
    } else {
        for (const auto& [role, bytes] : metadata_.delegated)
            if (names_file(name, tuf::role_filename(role))) found = &bytes;
    }
    if (!found || found->empty()) throw Error(ErrorKind::NotFound, name + " was not pushed");
    if (found->size() > max_length)
        throw Error(ErrorKind::TooLarge,
                    name + " is longer than the " + std::to_string(max_length) + " bytes allowed");
    return *found;
}

void PushedFetcher::fetch_to_file(const std::string& url, const std::string&, uint64_t, bool,
                                  const net::ProgressFn&) {
    throw Error(ErrorKind::Unsupported, url + ": images are not fetched from pushed metadata");
}

uint64_t trusted_root_version(const std::string& metadata_dir) {
    const std::string path = join_path(metadata_dir, "root.json");
    if (!file_exists(path)) return 0;
    return tuf::parse_envelope(read_file(path, 1 << 20), "root").version;
}

std::string percent_decode(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            auto hex = [](char c) -> int {
                if (c >= '0' && c <= '9') return c - '0';
                if (c >= 'A' && c <= 'F') return c - 'A' + 10;
                if (c >= 'a' && c <= 'f') return c - 'a' + 10;
                return -1;
            };
            int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out.push_back(static_cast<char>(hi * 16 + lo));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i]);
    }
    return out;
}

RepositoryMetadata collect_repository_metadata(const std::string& trusted_dir,
                                               uint64_t receiver_root_version, bool full,
                                               net::Fetcher& fetcher,
                                               const std::string& metadata_base_url,
                                               const MetadataLimits& limits) {
    RepositoryMetadata m;
    const std::string root_bytes = read_file(join_path(trusted_dir, "root.json"), limits.root);
    const uint64_t current = tuf::parse_envelope(root_bytes, "root").version;
    if (current > receiver_root_version + limits.max_roots)
        throw Error(ErrorKind::TooLarge, "the receiver trusts root version " +
                                             std::to_string(receiver_root_version) +
                                             ", more than " + std::to_string(limits.max_roots) +
                                             " rotations behind " + std::to_string(current));
    for (uint64_t v = receiver_root_version + 1; v < current; ++v)
        m.roots[v] =
            fetcher.fetch(metadata_base_url + std::to_string(v) + ".root.json", limits.root);
    if (current > receiver_root_version) m.roots[current] = root_bytes;
    m.targets = read_file(join_path(trusted_dir, "targets.json"), limits.targets);
    if (!full) return m;
    m.timestamp = read_file(join_path(trusted_dir, "timestamp.json"), limits.timestamp);
    m.snapshot = read_file(join_path(trusted_dir, "snapshot.json"), limits.snapshot);
    // Delegated roles the primary loaded for its own searches (ROLE.json, percent-encoded).
    DIR* d = ::opendir(trusted_dir.c_str());
    if (!d) throw Error(ErrorKind::Io, "cannot open " + trusted_dir);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d))
        names.emplace_back(e->d_name);
    ::closedir(d);
    for (const auto& n : names) {
        if (n.size() <= 5 || n.compare(n.size() - 5, 5, ".json") != 0) continue;
        if (n == "root.json" || n == "timestamp.json" || n == "snapshot.json" ||
            n == "targets.json")
            continue;
        if (m.delegated.size() >= limits.max_delegated) break;
        m.delegated[percent_decode(n.substr(0, n.size() - 5))] =
            read_file(join_path(trusted_dir, n), limits.delegated);
    }
    return m;
}

} // namespace ota::uptane
