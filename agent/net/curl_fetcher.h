// libcurl-based Fetcher for http and https URLs; file URLs go to FileFetcher, without libcurl.
// One easy handle is kept and reused, so the requests of a poll cycle share one keep-alive
// connection (libcurl's connection cache lives in the handle).
#pragma once
#include "agent/net/fetcher.h"

#include <cstdint>
#include <memory>
#include <string>

namespace ota::net {

struct TransportOptions {
    std::string ca_file;           // CA bundle that must sign the server certificate (https)
    std::string pinned_public_key; // "sha256//BASE64" or a PEM/DER file: curl's PINNEDPUBLICKEY
    std::string client_cert;       // device identity for mutual TLS (PEM)
    std::string client_key;        // PEM; never logged
    long connect_timeout_s = 15;
    // Slow-retrieval defence: abort when fewer than low_speed_bytes/s for low_speed_time_s.
    long low_speed_bytes = 1024;
    long low_speed_time_s = 30;
    uint64_t max_bytes_per_second = 0; // bandwidth cap, 0 = none
    // Retries of a failed transfer (transient network errors only: never 404, other 4xx, TLS
    // verification failures or too-large bodies), with exponential backoff from retry_base_ms,
    // capped at retry_max_ms, with random jitter.
    int retries = 0;
    long retry_base_ms = 500;
    long retry_max_ms = 30000;
};

class CurlFetcher : public Fetcher {
public:
    explicit CurlFetcher(TransportOptions options = {});
    ~CurlFetcher() override;
    CurlFetcher(const CurlFetcher&) = delete;
    CurlFetcher& operator=(const CurlFetcher&) = delete;
    std::string fetch(const std::string& url, uint64_t max_length) override;
    void fetch_to_file(const std::string& url, const std::string& path, uint64_t max_length,
                       bool resume, const ProgressFn& progress) override;
    bool can_stream() const override { return true; }
    // Asks for "Range: bytes=offset-(end-1)"; a 206 must start at offset, a 200 only answers a
    // range from byte 0 (and must not run past `end`).
    void fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                     const RangeSink& sink) override;

private:
    void fetch_range_once(const std::string& url, uint64_t offset, uint64_t end,
                          const RangeSink& sink);
    std::string fetch_once(const std::string& url, uint64_t max_length);
    void fetch_to_file_once(const std::string& url, const std::string& path, uint64_t max_length,
                            bool resume, const ProgressFn& progress);
    template <typename F> auto with_retries(const std::string& url, F&& attempt);
    TransportOptions options_;
    struct Connection;
    std::unique_ptr<Connection> connection_;
};

// The pause before retry number `attempt` (0 = first retry): retry_base_ms * 2^attempt, capped at
// retry_max_ms, of which a random half is kept ("equal jitter": between half and all of it), so a
// fleet that lost its server at the same moment does not come back in lockstep.
long retry_delay_ms(const TransportOptions& options, int attempt, uint32_t random);

// Redacts credentials and query strings so URLs can be logged.
std::string redact_url(const std::string& url);

} // namespace ota::net
