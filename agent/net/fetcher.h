// Fetching remote objects. Every fetch is bounded: a body longer than max_length is an error
// (endless-data attack), not a truncation.
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace ota::net {

using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

class Fetcher {
public:
    virtual ~Fetcher() = default;
    // Returns the whole body. Throws Error(NotFound) for HTTP 404 / missing file,
    // Error(TooLarge) when the body exceeds max_length, Error(Network) otherwise.
    virtual std::string fetch(const std::string& url, uint64_t max_length) = 0;
    // Downloads to `path`, resuming from the bytes already in `path` when `resume` is set and the
    // server honours Range requests (restarting otherwise). The file ends with exactly the bytes
    // of the object; at most max_length bytes in total.
    virtual void fetch_to_file(const std::string& url, const std::string& path, uint64_t max_length,
                               bool resume, const ProgressFn& progress) = 0;
};

} // namespace ota::net
