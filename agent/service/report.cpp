#include "agent/service/report.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"
#include "agent/common/log.h"
#include "agent/net/libcurl.h"

#include <ctime>
#include <limits>
#include <sys/stat.h>

namespace ota::service {

Json build_report(const update::AgentConfig& config, const Json& status, uint64_t counter) {
    Json installed = Json::object();
    installed[config.component] =
        Json{{"version", status.value("installed_version", uint64_t{0})}, {"image_sha256", ""}};
    if (status.contains("installed"))
        for (auto it = status["installed"].begin(); it != status["installed"].end(); ++it)
            installed[it.key()] = Json{{"version", it->value("version", uint64_t{0})},
                                       {"image_sha256", it->value("image_sha256", "")}};
    if (status.contains("models"))
        for (auto it = status["models"].begin(); it != status["models"].end(); ++it)
            if ((*it)["current"].is_number_unsigned()) {
                Json& entry = installed[it.key()];
                entry["version"] = (*it)["current"];
                if (!entry.contains("image_sha256")) entry["image_sha256"] = "";
            }
    return Json{{"type", "ota-version-report"},
                {"ecu_serial",
                 config.report.ecu_serial.empty() ? config.hardware_id : config.report.ecu_serial},
                {"hardware_id", config.hardware_id},
                {"time", static_cast<int64_t>(::time(nullptr))},
                {"counter", counter},
                {"installed", installed},
                {"release", status.value("release", Json(nullptr))},
                {"booted_slot", status.value("booted_slot", "")},
                {"pending", status.value("pending", Json(nullptr))},
                {"last_result", status.value("last_result", Json(nullptr))}};
}

Json sign_report(const Json& signed_part, const SigningKey& key) {
    auto sig = key.sign(canonical_json(signed_part));
    return Json{{"signed", signed_part},
                {"signatures", Json::array({Json{{"keyid", sha256_hex(key.public_pem())},
                                                 {"method", key.scheme()},
                                                 {"sig", to_hex(sig.data(), sig.size())}}})}};
}

bool verify_report(const Json& report, const std::string& public_key_pem) {
    if (!report.is_object() || !report.contains("signed") || !report.contains("signatures") ||
        !report["signatures"].is_array())
        return false;
    const std::string message = canonical_json(report["signed"]);
    for (const auto& s : report["signatures"]) {
        if (!s.is_object() || !s.contains("sig") || !s["sig"].is_string() ||
            !s.contains("method") || !s["method"].is_string())
            continue;
        std::vector<uint8_t> sig;
        try {
            sig = from_hex(s["sig"].get<std::string>());
        } catch (const Error&) {
            continue;
        }
        if (verify_signature(s["method"].get<std::string>(), public_key_pem, message, sig))
            return true;
    }
    return false;
}

namespace {
size_t discard(char*, size_t size, size_t n, void*) {
    return size * n;
}
} // namespace

void post_json(const std::string& url, const std::string& body,
               const net::TransportOptions& transport) {
    CURL* curl = net::libcurl().easy_init();
    if (!curl) throw Error(ErrorKind::Network, "curl_easy_init failed");
    struct curl_slist* headers = nullptr;
    headers = net::libcurl().slist_append(headers, "Content-Type: application/json");
    headers = net::libcurl().slist_append(headers, "Expect:");
    net::libcurl().easy_setopt(curl, CURLOPT_URL, url.c_str());
    net::libcurl().easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    net::libcurl().easy_setopt(curl, CURLOPT_POST, 1L);
    net::libcurl().easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    net::libcurl().easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                               static_cast<curl_off_t>(body.size()));
    net::libcurl().easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    net::libcurl().easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    net::libcurl().easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, transport.connect_timeout_s);
    net::libcurl().easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    net::libcurl().easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
    net::libcurl().easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    if (!transport.ca_file.empty())
        net::libcurl().easy_setopt(curl, CURLOPT_CAINFO, transport.ca_file.c_str());
    if (!transport.pinned_public_key.empty())
        net::libcurl().easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY,
                                   transport.pinned_public_key.c_str());
    if (!transport.client_cert.empty()) {
        net::libcurl().easy_setopt(curl, CURLOPT_SSLCERT, transport.client_cert.c_str());
        net::libcurl().easy_setopt(curl, CURLOPT_SSLKEY, transport.client_key.c_str());
    }
    CURLcode rc = net::libcurl().easy_perform(curl);
    long status = 0;
    net::libcurl().easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    net::libcurl().slist_free_all(headers);
    net::libcurl().easy_cleanup(curl);
    if (rc != CURLE_OK)
        throw Error(ErrorKind::Network, "report to " + net::redact_url(url) +
                                            " failed: " + net::libcurl().easy_strerror(rc));
    if (status < 200 || status > 299)
        throw Error(ErrorKind::Network, "report to " + net::redact_url(url) + " answered HTTP " +
                                            std::to_string(status));
}

namespace {

// A counter file holds a decimal number and a newline, nothing else.
uint64_t parse_counter(const std::string& text) {
    std::string digits = text;
    if (!digits.empty() && digits.back() == '\n') digits.pop_back();
    if (digits.empty() || digits.size() > 20 ||
        digits.find_first_not_of("0123456789") != std::string::npos)
        throw Error(ErrorKind::Malformed, "not a decimal number");
    try {
        return std::stoull(digits);
    } catch (const std::exception&) {
        throw Error(ErrorKind::Malformed, "out of range");
    }
}

uint64_t counter_of_report(const std::string& text, const std::string& path) {
    Json report = parse_json(text, path);
    if (!report.is_object() || !report.contains("signed") || !report["signed"].is_object() ||
        !report["signed"].contains("counter") || !report["signed"]["counter"].is_number_unsigned())
        throw Error(ErrorKind::Malformed, "no signed.counter");
    return report["signed"]["counter"].get<uint64_t>();
}

bool present(const std::string& path) {
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

} // namespace

uint64_t next_report_counter(const std::string& state_dir) {
    const std::string copies[] = {state_dir + "/report-counter", state_dir + "/report-counter.bak"};
    const std::string last_report = state_dir + "/last-report.json";
    std::optional<uint64_t> highest;
    std::string problems;
    bool any_present = false;
    auto witness = [&](const std::string& path,
                       uint64_t (*parse)(const std::string&, const std::string&)) {
        if (!present(path)) return;
        any_present = true;
        try {
            const uint64_t value = parse(read_regular_file(path, 1 << 20), path);
            highest = std::max(highest.value_or(0), value);
        } catch (const std::exception& e) {
            problems += (problems.empty() ? "" : "; ") + path + ": " + e.what();
        }
    };
    for (const auto& copy : copies)
        witness(copy,
                [](const std::string& text, const std::string&) { return parse_counter(text); });
    witness(last_report, counter_of_report);
    if (any_present && !highest)
        throw Error(ErrorKind::State,
                    "no valid report counter (" + problems +
                        "): refusing to send a report that could repeat an earlier counter; write "
                        "a number above the last counter the server accepted into " +
                        copies[0]);
    if (!problems.empty()) LOG_WARN("report counter: ignoring " << problems);
    if (highest == std::numeric_limits<uint64_t>::max())
        throw Error(ErrorKind::State, "the report counter is exhausted");
    const uint64_t next = highest.value_or(0) + 1;
    // Both copies hold `next` before any report carries it: a power cut between the two writes
    // leaves the first one ahead, and the maximum is what counts.
    make_directories(state_dir);
    for (const auto& copy : copies)
        write_file_atomic(copy, std::to_string(next) + "\n");
    return next;
}

Json send_report(const update::AgentConfig& config, const Json& status) {
    SigningKey key = SigningKey::from_pem(read_file(config.report.device_key, 64 * 1024));
    const uint64_t counter = next_report_counter(config.state_dir);
    Json report = sign_report(build_report(config, status, counter), key);
    write_file_atomic(config.state_dir + "/last-report.json", report.dump(1) + "\n");
    post_json(config.report.url, report.dump(), config.transport);
    return report;
}

} // namespace ota::service
