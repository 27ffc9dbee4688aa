// file:// URLs read by the agent itself: a repository or bundle on local storage (a USB stick, a
// service laptop's share) needs neither libcurl nor the thirty libraries it maps. Bounded like
// HTTP: a file longer than the allowed length is refused, not truncated.
#pragma once
#include "agent/net/fetcher.h"

#include <string>

namespace ota::net {

// True for "file:" URLs.
bool is_file_scheme(const std::string& url);

// The local path a file URL names: "file:///abs/path" or "file://localhost/abs/path", with %XX
// escapes decoded. Throws Error(Config) for another host, a relative path, a query, a fragment,
// a bad escape or an escaped NUL.
std::string file_url_path(const std::string& url);

class FileFetcher : public Fetcher {
public:
    // NotFound: no such file (or a folder); TooLarge: longer than max_length; Io: cannot read.
    std::string fetch(const std::string& url, uint64_t max_length) override;
    // Copies the file to `path` (fsynced), resuming after the bytes already there when `resume`
    // is set and they are no more than the source has; progress after each piece.
    void fetch_to_file(const std::string& url, const std::string& path, uint64_t max_length,
                       bool resume, const ProgressFn& progress) override;
    bool can_stream() const override { return true; }
    // Network: the file ends before `end`.
    void fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                     const RangeSink& sink) override;
};

} // namespace ota::net
