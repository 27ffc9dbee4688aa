#include "agent/bundle/journal.h"

#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"

namespace ota::bundle {

std::optional<JournalState> InstallJournal::load() const {
    if (!file_exists(path_)) return std::nullopt;
    try {
        Json j = parse_json(read_file(path_, 64 << 10), "install journal " + path_);
        JournalState s;
        s.header_sha256 = j.at("header_sha256").get<std::string>();
        s.target = j.at("target").get<std::string>();
        s.next_op = j.at("next_op").get<uint64_t>();
        s.complete = j.at("complete").get<bool>();
        if (j.at("version").get<int>() != 1) return std::nullopt;
        return s;
    } catch (const std::exception& e) {
        LOG_WARN("ignoring unreadable install journal " << path_ << ": " << e.what());
        return std::nullopt;
    }
}

void InstallJournal::save(const JournalState& s) {
    Json j = {{"version", 1},
              {"header_sha256", s.header_sha256},
              {"target", s.target},
              {"next_op", s.next_op},
              {"complete", s.complete}};
    write_file_atomic(path_, canonical_json(j) + "\n");
}

void InstallJournal::clear() {
    remove_file_durable(path_);
}

} // namespace ota::bundle
