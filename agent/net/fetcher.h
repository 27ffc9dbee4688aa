// Fetching remote objects. Every fetch is bounded: a body longer than max_length is an error
// (endless-data attack), not a truncation.
#pragma once
#include "agent/common/error.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace ota::net {

using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

// Receives a byte range of an object as it arrives, in order. `data` may throw to stop the
// transfer (the exception leaves fetch_range); `cancelled` is polled while waiting for the network
// (an idle connection included), and stops the transfer with Error(State) when it returns true.
struct RangeSink {
    std::function<void(const uint8_t* data, size_t size)> data;
    std::function<bool()> cancelled;
};

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
    // Whether fetch_range works (streaming installs need it; others download the whole object).
    virtual bool can_stream() const { return false; }
    // Delivers exactly bytes [offset, end) of the object to `sink`, in order and each byte once
    // (a transfer cut and retried resumes with a Range request where it stopped). Throws
    // Error(NotFound), Error(Network) (also when the object ends before `end` or the server does
    // not honour the range), Error(State) when cancelled, Error(Unsupported) when !can_stream().
    virtual void fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                             const RangeSink& sink);
};

inline void Fetcher::fetch_range(const std::string& url, uint64_t, uint64_t, const RangeSink&) {
    throw Error(ErrorKind::Unsupported, url + ": this transport cannot stream a byte range");
}

} // namespace ota::net
