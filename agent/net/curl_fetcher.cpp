#include "agent/net/curl_fetcher.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/log.h"

#include <chrono>
#include <curl/curl.h>
#include <fcntl.h>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace ota::net {

namespace {

void ensure_curl_global() {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlHandle {
    CURL* h;
    CurlHandle() : h(curl_easy_init()) {
        if (!h) throw Error(ErrorKind::Network, "curl_easy_init failed");
    }
    ~CurlHandle() { curl_easy_cleanup(h); }
    CurlHandle(const CurlHandle&) = delete;
    CurlHandle& operator=(const CurlHandle&) = delete;
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
};

size_t on_data(char* ptr, size_t size, size_t nmemb, void* userdata) {
    auto* sink = static_cast<Sink*>(userdata);
    size_t n = size * nmemb;
    if (sink->base + sink->received + n > sink->max_length) {
        sink->too_large = true;
        return 0; // aborts the transfer with CURLE_WRITE_ERROR
    }
    if (sink->memory) {
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

bool is_file_url(const std::string& url) { return url.rfind("file:", 0) == 0; }

} // namespace

std::string redact_url(const std::string& url) {
    std::string out = url;
    if (auto q = out.find('?'); q != std::string::npos) out = out.substr(0, q) + "?...";
    auto scheme = out.find("://");
    auto at = out.find('@');
    if (scheme != std::string::npos && at != std::string::npos && at > scheme) {
        auto slash = out.find('/', scheme + 3);
        if (slash == std::string::npos || at < slash) out = out.substr(0, scheme + 3) + "***" + out.substr(at);
    }
    return out;
}

CurlFetcher::CurlFetcher(TransportOptions options) : options_(std::move(options)) {
    ensure_curl_global();
}

static void configure(CURL* h, const TransportOptions& o, const std::string& url, Sink& sink) {
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, o.low_speed_bytes);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, o.low_speed_time_s);
    curl_easy_setopt(h, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!o.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, o.ca_file.c_str());
    if (!o.pinned_public_key.empty())
        curl_easy_setopt(h, CURLOPT_PINNEDPUBLICKEY, o.pinned_public_key.c_str());
    if (!o.client_cert.empty()) curl_easy_setopt(h, CURLOPT_SSLCERT, o.client_cert.c_str());
    if (!o.client_key.empty()) curl_easy_setopt(h, CURLOPT_SSLKEY, o.client_key.c_str());
    if (o.max_bytes_per_second > 0)
        curl_easy_setopt(h, CURLOPT_MAX_RECV_SPEED_LARGE,
                         static_cast<curl_off_t>(o.max_bytes_per_second));
    // The server never needs to know more than the object asked for.
    curl_easy_setopt(h, CURLOPT_USERAGENT, "ota-agent/0.1");
}

// Maps a finished transfer to an error (or nothing on success).
static void check_result(CURL* h, CURLcode rc, const Sink& sink, const std::string& url,
                         bool allow_partial_206) {
    const std::string shown = redact_url(url);
    if (sink.too_large)
        throw Error(ErrorKind::TooLarge,
                    shown + ": body exceeds the allowed length of " + std::to_string(sink.max_length) + " bytes");
    if (sink.io_failed) throw Error(ErrorKind::Io, sink.io_error);
    if (rc == CURLE_FILE_COULDNT_READ_FILE) throw Error(ErrorKind::NotFound, shown + ": not found");
    if (rc == CURLE_OPERATION_TIMEDOUT)
        throw Error(ErrorKind::Network, shown + ": transfer too slow or stalled (timeout)");
    if (rc != CURLE_OK)
        throw Error(ErrorKind::Network, shown + ": " + curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (is_file_url(url)) return;
    if (status == 404 || status == 403 || status == 410)
        throw Error(ErrorKind::NotFound, shown + ": HTTP " + std::to_string(status));
    if (status == 200 || (allow_partial_206 && status == 206)) return;
    throw Error(ErrorKind::Network, shown + ": HTTP " + std::to_string(status));
}

template <typename F> auto CurlFetcher::with_retries(const std::string& url, F&& attempt) {
    for (int i = 0;; ++i) {
        try {
            return attempt();
        } catch (const Error& e) {
            if (e.kind() != ErrorKind::Network || i >= options_.retries) throw;
            long delay = options_.retry_base_ms << std::min(i, 16);
            delay = std::min(delay, options_.retry_max_ms);
            uint32_t r = 0;
            random_bytes(&r, sizeof r);
            delay = delay / 2 + static_cast<long>(r % static_cast<uint32_t>(delay / 2 + 1));
            LOG_WARN("download of " << redact_url(url) << " failed (" << e.what() << "), retry "
                                    << (i + 1) << " in " << delay << " ms");
            std::this_thread::sleep_for(std::chrono::milliseconds(delay));
        }
    }
}

std::string CurlFetcher::fetch(const std::string& url, uint64_t max_length) {
    return with_retries(url, [&] { return fetch_once(url, max_length); });
}

std::string CurlFetcher::fetch_once(const std::string& url, uint64_t max_length) {
    CurlHandle c;
    std::string body;
    Sink sink;
    sink.max_length = max_length;
    sink.memory = &body;
    configure(c.h, options_, url, sink);
    CURLcode rc = curl_easy_perform(c.h);
    check_result(c.h, rc, sink, url, false);
    return body;
}

void CurlFetcher::fetch_to_file(const std::string& url, const std::string& path,
                                uint64_t max_length, bool resume, const ProgressFn& progress) {
    // After a failure the partial file is kept, so each retry resumes where the last one stopped.
    with_retries(url, [&] {
        fetch_to_file_once(url, path, max_length, resume, progress);
        return 0;
    });
}

void CurlFetcher::fetch_to_file_once(const std::string& url, const std::string& path,
                                     uint64_t max_length, bool resume,
                                     const ProgressFn& progress) {
    uint64_t have = resume && file_exists(path) ? file_size(path) : 0;
    if (have > max_length) have = 0;
    if (have == max_length && have > 0) return; // complete already; the caller verifies it
    UniqueFd fd = open_or_throw(path, O_WRONLY | O_CREAT | (have ? 0 : O_TRUNC), 0644);
    if (have && ::lseek(fd.get(), static_cast<off_t>(have), SEEK_SET) < 0)
        throw Error(ErrorKind::Io, "seek " + path);
    CurlHandle c;
    Sink sink;
    sink.max_length = max_length;
    sink.fd = fd.get();
    sink.path = path;
    sink.base = have;
    sink.progress = &progress;
    sink.expected_total = max_length;
    configure(c.h, options_, url, sink);
    if (have) curl_easy_setopt(c.h, CURLOPT_RESUME_FROM_LARGE, static_cast<curl_off_t>(have));
    CURLcode rc = curl_easy_perform(c.h);
    long status = 0;
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &status);
    if (have && status == 200 && !sink.io_failed && !is_file_url(url)) {
        // The server ignored the Range request and sent the whole object from the start: the
        // bytes appended after ours are the object's beginning, so start over.
        LOG_WARN(redact_url(url) << ": server ignored the range request, restarting download");
        if (::ftruncate(fd.get(), 0) != 0) throw Error(ErrorKind::Io, "truncate " + path);
        fd = UniqueFd();
        fetch_to_file_once(url, path, max_length, false, progress);
        return;
    }
    if (have && rc == CURLE_HTTP_RANGE_ERROR) {
        fd = UniqueFd();
        fetch_to_file_once(url, path, max_length, false, progress);
        return;
    }
    fsync_or_throw(fd.get(), path);
    check_result(c.h, rc, sink, url, have > 0);
}

} // namespace ota::net
