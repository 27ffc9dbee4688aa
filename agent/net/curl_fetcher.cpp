#include "agent/net/curl_fetcher.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"
#include "agent/net/file_fetcher.h"
#include "agent/net/libcurl.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <mutex>
#include <optional>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

namespace ota::net {

namespace {

struct CurlHandle {
    CURL* h;
    char error[CURL_ERROR_SIZE] = {};
    CurlHandle() : h(libcurl().easy_init()) {
        if (!h) throw Error(ErrorKind::Network, "curl_easy_init failed");
        libcurl().easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    }
    ~CurlHandle() { libcurl().easy_cleanup(h); }
    // Before the next transfer on the same handle: every option back to its default (a resume
    // offset must not leak into the next request) while the connection cache stays.
    void reset() {
        libcurl().easy_reset(h);
        error[0] = '\0';
        libcurl().easy_setopt(h, CURLOPT_ERRORBUFFER, error);
    }
    CurlHandle(const CurlHandle&) = delete;
    CurlHandle& operator=(const CurlHandle&) = delete;
};

// A network failure that another attempt cannot fix (the server's certificate is not trusted,
// the client certificate was refused, HTTP 4xx): reported at once instead of retried.
class PermanentNetworkError : public Error {
public:
    explicit PermanentNetworkError(const std::string& message)
        : Error(ErrorKind::Network, message) {}
};

// Where received bytes go, with the bound enforced as they arrive.
struct Sink {
    uint64_t max_length = 0;
    uint64_t received = 0;
    bool too_large = false;
    std::string* memory = nullptr;
    int fd = -1;
    std::string path;
    bool io_failed = false;
    std::string io_error;
    uint64_t base = 0; // bytes already present before this transfer (resume)
    const ProgressFn* progress = nullptr;
    uint64_t expected_total = 0;
    // HTTP: only the body of a 200 or 206 answer is the object; an error page is never stored.
    CURL* handle = nullptr;
    bool http = false;
    bool status_checked = false;
    bool discard = false;
    // A 206 must carry exactly the bytes asked for: Content-Range "bytes FIRST-LAST/SIZE".
    std::optional<uint64_t> range_first;
    bool range_mismatch = false;
    // Streaming (fetch_range): bytes go to `range` instead; an exception it throws ends the
    // transfer and is rethrown once libcurl has returned.
    const RangeSink* range = nullptr;
    std::exception_ptr range_error;
    bool cancelled = false;
};

// Called once per header line; remembers where a partial answer starts.
size_t on_header(char* ptr, size_t size, size_t nmemb, void* userdata) {
    auto* sink = static_cast<Sink*>(userdata);
    const size_t n = size * nmemb;
    std::string line(ptr, n);
    if (line.rfind("HTTP/", 0) == 0) sink->range_first.reset(); // a new answer (after a 100)
    static const char kName[] = "content-range:";
    if (line.size() > sizeof kName - 1 &&
        std::equal(kName, kName + sizeof kName - 1, line.begin(), [](char a, char b) {
            return a == std::tolower(static_cast<unsigned char>(b));
        })) {
        const auto bytes = line.find("bytes ");
        if (bytes != std::string::npos) {
            const char* p = line.c_str() + bytes + 6;
            char* end = nullptr;
            errno = 0;
            const unsigned long long first = std::strtoull(p, &end, 10);
            if (errno == 0 && end != p && *end == '-') sink->range_first = first;
        }
    }
    return n;
}

// Decides at the first body byte whether the body is the object (or a part of it).
void check_status_once(Sink& sink) {
    if (sink.status_checked || !sink.http) return;
    sink.status_checked = true;
    long status = 0;
    libcurl().easy_getinfo(sink.handle, CURLINFO_RESPONSE_CODE, &status);
    if (status == 206) {
        if (sink.range_first != sink.base) sink.range_mismatch = true;
    } else if (status == 200) {
        if (sink.base > 0) sink.range_mismatch = true; // the whole object, not what follows ours
    } else {
        sink.discard = true; // check_result reports the status; the page itself is dropped
    }
}

size_t on_data(char* ptr, size_t size, size_t nmemb, void* userdata) {
    auto* sink = static_cast<Sink*>(userdata);
    size_t n = size * nmemb;
    check_status_once(*sink);
    if (sink->discard) return n;
    if (sink->range_mismatch) return 0; // aborts; the caller starts over from byte 0
    if (sink->base + sink->received + n > sink->max_length) {
        sink->too_large = true;
        return 0; // aborts the transfer with CURLE_WRITE_ERROR
    }
    if (sink->range && sink->range->cancelled && sink->range->cancelled()) {
        sink->cancelled = true;
        return 0;
    }
    if (sink->range) {
        try {
            sink->range->data(reinterpret_cast<const uint8_t*>(ptr), n);
        } catch (...) {
            sink->range_error = std::current_exception();
            return 0;
        }
    } else if (sink->memory) {
        sink->memory->append(ptr, n);
    } else {
        try {
            write_all(sink->fd, ptr, n, sink->path);
        } catch (const Error& e) {
            sink->io_failed = true;
            sink->io_error = e.what();
            return 0;
        }
    }
    sink->received += n;
    if (sink->progress && *sink->progress)
        (*sink->progress)(sink->base + sink->received, sink->expected_total);
    return n;
}

// Polled by libcurl about once a second, also while the connection is idle.
int on_transfer_info(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
    const auto* sink = static_cast<const Sink*>(userdata);
    return sink->range && sink->range->cancelled && sink->range->cancelled() ? 1 : 0;
}

bool is_file_url(const std::string& url) {
    return url.rfind("file:", 0) == 0;
}

// TLS failures that mean "this is not our server" or "the server does not accept us".
bool is_tls_verification_failure(CURLcode rc) {
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED: return true;
    default: return false;
    }
}

void configure(CURL* h, const TransportOptions& o, const std::string& url, Sink& sink) {
    libcurl().easy_setopt(h, CURLOPT_URL, url.c_str());
    libcurl().easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    libcurl().easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    libcurl().easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    libcurl().easy_setopt(h, CURLOPT_FAILONERROR, 0L);
    libcurl().easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    libcurl().easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    libcurl().easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    libcurl().easy_setopt(h, CURLOPT_HEADERDATA, &sink);
    sink.handle = h;
    sink.http = !is_file_url(url);
    libcurl().easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
    libcurl().easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
    libcurl().easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
    // An announced Content-Length above the bound fails before the first body byte.
    libcurl().easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(sink.max_length));
    libcurl().easy_setopt(h, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    libcurl().easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    libcurl().easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!o.ca_file.empty()) libcurl().easy_setopt(h, CURLOPT_CAINFO, o.ca_file.c_str());
    if (!o.pinned_public_key.empty())
        libcurl().easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, o.pinned_public_key.c_str());
    if (!o.client_cert.empty()) libcurl().easy_setopt(h, CURLOPT_SSLCERT, o.client_cert.c_str());
    if (!o.client_key.empty()) libcurl().easy_setopt(h, CURLOPT_SSLKEY, o.client_key.c_str());
    if (o.max_bytes_per_second > 0)
        libcurl().easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE,
                              static_cast<curl_off_t>(o.max_bytes_per_second));
    // The server never needs to know more than the object asked for.
    libcurl().easy_setopt(h, CURLOPT_USERAGENT, "ota-agent/0.1");
}

long response_status(CURL* h) {
    long status = 0;
    libcurl().easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

// Maps a finished transfer to an error (or nothing on success).
void check_result(const CurlHandle& c, CURLcode rc, const Sink& sink, const std::string& url,
                  bool allow_partial_206) {
    const std::string shown = redact_url(url);
    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED)
        throw Error(ErrorKind::TooLarge, shown + ": body exceeds the allowed length of " +
                                             std::to_string(sink.max_length) + " bytes");
    if (sink.io_failed) throw Error(ErrorKind::Io, sink.io_error);
    if (sink.range_mismatch)
        throw Error(ErrorKind::Network,
                    shown + ": HTTP 206 with a Content-Range that does not start at byte " +
                        std::to_string(sink.base) + " as asked");
    if (rc == CURLE_FILE_COULDNT_READ_FILE) throw Error(ErrorKind::NotFound, shown + ": not found");
    const std::string detail = c.error[0] ? c.error : libcurl().easy_strerror(rc);
    if (rc == CURLE_OPERATION_TIMEDOUT)
        throw Error(ErrorKind::Network,
                    shown + ": transfer too slow or stalled (timeout): " + detail);
    if (is_tls_verification_failure(rc))
        throw PermanentNetworkError(shown + ": TLS verification failed: " + detail);
    if (rc != CURLE_OK) throw Error(ErrorKind::Network, shown + ": " + detail);
    if (is_file_url(url)) return;
    const long status = response_status(c.h);
    if (status == 404 || status == 403 || status == 410)
        throw Error(ErrorKind::NotFound, shown + ": HTTP " + std::to_string(status));
    if (status == 200 || (allow_partial_206 && status == 206)) return;
    const std::string message = shown + ": HTTP " + std::to_string(status);
    // Client errors are the server's final answer (e.g. 400 when our certificate is missing);
    // timeouts, rate limits and server errors may pass.
    if (status >= 400 && status < 500 && status != 408 && status != 429)
        throw PermanentNetworkError(message);
    throw Error(ErrorKind::Network, message);
}

} // namespace

std::string redact_url(const std::string& url) {
    std::string out = url;
    if (auto q = out.find('?'); q != std::string::npos) out = out.substr(0, q) + "?...";
    auto scheme = out.find("://");
    auto at = out.find('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
        auto slash = out.find('/', scheme + 3);
        if (slash == std::string::npos || at < slash)
            out = out.substr(0, scheme + 3) + "***" + out.substr(at);
    }
    return out;
}

long retry_delay_ms(const TransportOptions& options, int attempt, uint32_t random) {
    const long cap = std::max(1L, options.retry_max_ms);
    long delay = std::max(1L, options.retry_base_ms);
    for (int i = 0; i < attempt && delay < cap; ++i)
        delay *= 2;
    delay = std::min(delay, cap);
    return delay - static_cast<long>(random % static_cast<uint32_t>(delay / 2 + 1));
}

// The handle kept between transfers. A transfer started while another thread holds it gets a
// handle of its own.
struct CurlFetcher::Connection {
    std::mutex mutex;
    std::unique_ptr<CurlHandle> handle;
};

namespace {

class BorrowedHandle {
public:
    explicit BorrowedHandle(std::mutex& mutex, std::unique_ptr<CurlHandle>& kept)
        : lock_(mutex, std::try_to_lock) {
        if (!lock_.owns_lock()) {
            own_.emplace();
            handle_ = &*own_;
        } else if (kept) {
            kept->reset();
            handle_ = kept.get();
        } else {
            kept = std::make_unique<CurlHandle>();
            handle_ = kept.get();
        }
    }
    CurlHandle& operator*() const { return *handle_; }
    CurlHandle* operator->() const { return handle_; }

private:
    std::unique_lock<std::mutex> lock_;
    std::optional<CurlHandle> own_;
    CurlHandle* handle_ = nullptr;
};

} // namespace

CurlFetcher::CurlFetcher(TransportOptions options)
    : options_(std::move(options)), connection_(std::make_unique<Connection>()) {}

CurlFetcher::~CurlFetcher() = default;

template <typename F> auto CurlFetcher::with_retries(const std::string& url, F&& attempt) {
    for (int i = 0;; ++i) {
        try {
            return attempt();
        } catch (const PermanentNetworkError&) {
            throw;
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Network || i >= options_.retries) throw;
            uint32_t r = 0;
            random_bytes(&r, sizeof r);
            const long delay = retry_delay_ms(options_, i, r);
            LOG_WARN("transfer of " << redact_url(url) << " failed (" << e.what() << "), retry "
                                    << (i + 1) << "/" << options_.retries << " in " << delay
                                    << " ms");
            std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        }
    }
}

std::string CurlFetcher::fetch(const std::string& url, uint64_t max_length) {
    if (is_file_scheme(url)) return FileFetcher().fetch(url, max_length);
    return with_retries(url, [&] { return fetch_once(url, max_length); });
}

std::string CurlFetcher::fetch_once(const std::string& url, uint64_t max_length) {
    BorrowedHandle c(connection_->mutex, connection_->handle);
    std::string body;
    Sink sink;
    sink.max_length = max_length;
    sink.memory = &body;
    configure(c->h, options_, url, sink);
    CURLcode rc = libcurl().easy_perform(c->h);
    check_result(*c, rc, sink, url, false);
    return body;
}

void CurlFetcher::fetch_to_file(const std::string& url, const std::string& path,
                                uint64_t max_length, bool resume, const ProgressFn& progress) {
    if (is_file_scheme(url))
        return FileFetcher().fetch_to_file(url, path, max_length, resume, progress);
    // After a network failure the partial file is kept, so each retry (and the next run) resumes
    // where the last one stopped. After a local storage failure (disk full, read-only) it is
    // removed: it would only hold on to the space the agent's state needs.
    try {
        with_retries(url, [&] {
            fetch_to_file_once(url, path, max_length, resume, progress);
            return 0;
        });
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::Io && ::unlink(path.c_str()) == 0)
            LOG_WARN("removed the partial download " << path << " after: " << e.what());
        throw;
    }
}

void CurlFetcher::fetch_to_file_once(const std::string& url, const std::string& path,
                                     uint64_t max_length, bool resume, const ProgressFn& progress) {
    uint64_t have = resume && file_exists(path) ? file_size(path) : 0;
    if (have > max_length) have = 0;
    if (have == max_length && have > 0) return; // complete already; the caller verifies it
    for (;;) {
        // Owner-only: the object may be anything the URL names (install file:///etc/shadow).
        UniqueFd fd =
            open_or_throw(path, O_WRONLY | O_CREAT | O_NOFOLLOW | (have ? 0 : O_TRUNC), 0600);
        if (::fchmod(fd.get(), 0600) != 0)
            throw Error(ErrorKind::Io, "chmod " + path + ": " + std::strerror(errno));
        if (have && ::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0)
            throw Error(ErrorKind::Io, "seek " + path + ": " + std::strerror(errno));
        BorrowedHandle c(connection_->mutex, connection_->handle);
        Sink sink;
        sink.max_length = max_length;
        sink.fd = fd.get();
        sink.path = path;
        sink.base = have;
        sink.progress = &progress;
        sink.expected_total = max_length;
        configure(c->h, options_, url, sink);
        if (have)
            libcurl().easy_setopt(c->h, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have));
        const CURLcode rc = libcurl().easy_perform(c->h);
        const long status = response_status(c->h);
        // The server ignored the Range request (200: libcurl refuses to append the object's
        // beginning after our bytes; a 206 from elsewhere) or cannot serve it (416: the object is
        // shorter than what we hold, so it changed): start over from an empty file. An error
        // status (503 ...) is no answer to the range: the bytes we hold stay for the next try.
        const bool answered = status == 200 || status == 206 || status == 416;
        if (have && !is_file_url(url) && !sink.io_failed && answered &&
            (rc == CURLE_RANGE_ERROR || status != 206 || sink.range_mismatch)) {
            LOG_WARN(redact_url(url) << ": the server did not resume at byte " << have << " (HTTP "
                                     << status << "), downloading from the start");
            have = 0;
            continue;
        }
        // What arrived is kept for the next attempt, so it should survive a power cut too.
        if (rc == CURLE_OK && !sink.io_failed)
            fsync_or_throw(fd.get(), path);
        else if (!sink.io_failed)
            ::fsync(fd.get());
        // libcurl calls any answer to a Range request without a Content-Range a range error;
        // for an error status the status itself is what went wrong.
        check_result(*c, rc == CURLE_RANGE_ERROR && !answered ? CURLE_OK : rc, sink, url, have > 0);
        return;
    }
}

void CurlFetcher::fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                              const RangeSink& sink) {
    if (is_file_scheme(url)) return FileFetcher().fetch_range(url, offset, end, sink);
    // Each retry asks for what is still missing, so every byte reaches the sink exactly once.
    uint64_t delivered = 0;
    RangeSink counting{[&](const uint8_t* data, size_t size) {
                           sink.data(data, size);
                           delivered += size;
                       },
                       sink.cancelled};
    with_retries(url, [&] {
        fetch_range_once(url, offset + delivered, end, counting);
        return 0;
    });
}

void CurlFetcher::fetch_range_once(const std::string& url, uint64_t offset, uint64_t end,
                                   const RangeSink& range) {
    if (offset >= end) return;
    BorrowedHandle c(connection_->mutex, connection_->handle);
    Sink sink;
    sink.max_length = end;
    sink.base = offset;
    sink.range = &range;
    configure(c->h, options_, url, sink);
    const std::string bytes = std::to_string(offset) + "-" + std::to_string(end - 1);
    libcurl().easy_setopt(c->h, CURLOPT_RANGE, bytes.c_str());
    libcurl().easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_transfer_info);
    libcurl().easy_setopt(c->h, CURLOPT_XFERINFODATA, &sink);
    libcurl().easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    const CURLcode rc = libcurl().easy_perform(c->h);
    if (sink.range_error) std::rethrow_exception(sink.range_error);
    if (rc == CURLE_ABORTED_BY_CALLBACK || sink.cancelled)
        throw Error(ErrorKind::State, redact_url(url) + ": transfer cancelled");
    check_result(*c, rc, sink, url, true);
    if (offset + sink.received != end)
        throw Error(ErrorKind::Network, redact_url(url) + ": the answer ended at byte " +
                                            std::to_string(offset + sink.received) +
                                            " instead of " + std::to_string(end));
}

} // namespace ota::net
