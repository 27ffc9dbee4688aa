#include "agent/tuf/root_history.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/trusted_set.h"

#include <algorithm>
#include <dirent.h>
#include <memory>

namespace ota::tuf {

namespace {

// A root is at most UpdaterConfig::max_root_length (512 KiB by default); its JSON string form
// can be longer (escapes), so records are read with generous room.
constexpr uint64_t kMaxRecordSize = 8ull << 20;
constexpr size_t kMaxVersionDigits = 19;

// "123.json" -> 123; nullopt for any other name (temporary files included).
std::optional<uint64_t> version_of(const std::string& name) {
    const size_t dot = name.find('.');
    if (dot == 0 || dot == std::string::npos || dot > kMaxVersionDigits ||
        name.compare(dot, std::string::npos, ".json") != 0)
        return std::nullopt;
    uint64_t v = 0;
    for (size_t i = 0; i < dot; ++i) {
        if (name[i] < '0' || name[i] > '9') return std::nullopt;
        v = v * 10 + static_cast<uint64_t>(name[i] - '0');
    }
    return v;
}

Json role_summary(const RootMeta& root) {
    Json roles = Json::object();
    for (const auto& [name, keys] : root.roles) {
        Json entry{
            {"threshold", keys.threshold}, {"keyids", keys.keyids}, {"keytypes", Json::array()}};
        for (const auto& id : keys.keyids) {
            auto k = root.keys.find(id);
            entry["keytypes"].push_back(k == root.keys.end() ? "" : k->second.keytype);
        }
        roles[name] = entry;
    }
    return roles;
}

} // namespace

RootHistory::RootHistory(const std::string& metadata_dir)
    : dir_(join_path(metadata_dir, "root_history")) {}

std::string RootHistory::record_path(uint64_t version) const {
    return join_path(dir_, std::to_string(version) + ".json");
}

void RootHistory::record(const RootRecord& root) const {
    if (!file_exists(dir_)) {
        make_directories(dir_);
        fsync_directory(parent_directory(dir_));
    }
    const Json record{{"accepted", format_expiry(root.accepted)}, {"root", root.bytes}};
    write_file_atomic(record_path(root.version), record.dump(1) + "\n");
}

void RootHistory::clear() const {
    for (uint64_t v : versions())
        remove_file_durable(record_path(v));
}

std::vector<uint64_t> RootHistory::versions() const {
    std::vector<uint64_t> out;
    DIR* d = ::opendir(dir_.c_str());
    if (!d) return out;
    while (dirent* e = ::readdir(d)) {
        if (auto v = version_of(e->d_name)) out.push_back(*v);
        // Bounded: keep the newest kMaxRecords while reading a folder of any size.
        if (out.size() > 2 * kMaxRecords) {
            std::sort(out.begin(), out.end());
            out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(kMaxRecords));
        }
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    if (out.size() > kMaxRecords)
        out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(kMaxRecords));
    return out;
}

std::optional<RootRecord> RootHistory::load(uint64_t version) const {
    try {
        const Json j = parse_json(read_file(record_path(version), kMaxRecordSize), "root record");
        RootRecord r;
        r.version = version;
        r.accepted = parse_expiry(j.at("accepted").get<std::string>());
        r.bytes = j.at("root").get<std::string>();
        return r;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

std::optional<RootRecord> RootHistory::newest_verified(int64_t reference_time) const {
    std::unique_ptr<TrustedSet> chain;
    std::optional<RootRecord> newest;
    for (uint64_t v : versions()) {
        std::optional<RootRecord> record = load(v);
        if (!chain) {
            // The anchor: the oldest record that is intact on its own.
            if (!record) continue;
            try {
                auto anchor = std::make_unique<TrustedSet>(record->bytes, reference_time);
                if (anchor->root().env.version != v) continue;
                chain = std::move(anchor);
                newest = std::move(record);
            } catch (const Error&) {
            }
            continue;
        }
        if (!record || v != chain->root().env.version + 1) break;
        try {
            chain->update_root(record->bytes); // signed by the previous root and by itself
            newest = std::move(record);
        } catch (const Error&) {
            break;
        }
    }
    return newest;
}

Json root_history_json(const std::string& metadata_dir) {
    const RootHistory history(metadata_dir);
    Json out = Json::array();
    for (uint64_t v : history.versions()) {
        Json entry{{"version", v}};
        const std::optional<RootRecord> record = history.load(v);
        if (!record) {
            entry["intact"] = false;
            entry["error"] = "record unreadable";
            out.push_back(entry);
            continue;
        }
        entry["accepted"] = format_expiry(record->accepted);
        try {
            // Parsed and checked against its own keys, with no expiry check (time 0).
            TrustedSet self(record->bytes, 0);
            if (self.root().env.version != v)
                throw Error(ErrorKind::Malformed,
                            "holds version " + std::to_string(self.root().env.version));
            entry["intact"] = true;
            entry["expires"] = format_expiry(self.root().env.expires);
            entry["roles"] = role_summary(self.root().meta);
        } catch (const Error& e) {
            entry["intact"] = false;
            entry["error"] = e.what();
        }
        out.push_back(entry);
    }
    return out;
}

} // namespace ota::tuf
