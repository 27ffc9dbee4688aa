// The status report sent after each update attempt: what runs on this ECU (installed version of
// every component, the release, the booted slot) and how the last attempt ended, signed with the
// device key. This is the start of Uptane's ECU version report:
//
//   {"signed": {"type": "ota-version-report", "ecu_serial": ..., "hardware_id": ..., "time": ...,
//               "counter": N, "installed": {COMPONENT: {"version": V, "image_sha256": H}},
//               "release": {"id", "version"} | null, "booted_slot": ..., "pending": ... | null,
//               "last_result": {...} | null},
//    "signatures": [{"keyid": SHA256(public key PEM), "method": "ecdsa-sha2-nistp256",
//                    "sig": HEX(DER signature over canonical_json(signed))}]}
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/net/curl_fetcher.h"
#include "agent/update/config.h"

#include <string>

namespace ota::service {

// Builds the "signed" part from Engine::status() output. `counter` increases with every report
// (next_report_counter) so a server can refuse replayed reports.
Json build_report(const update::AgentConfig& config, const Json& status, uint64_t counter);
// Wraps it into {"signed", "signatures"}.
Json sign_report(const Json& signed_part, const SigningKey& key);
// True when `report` carries a valid signature of the public key over its signed part.
bool verify_report(const Json& report, const std::string& public_key_pem);

// Reserves the next report counter: one above the largest valid value among state_dir's two copies
// (report-counter, report-counter.bak) and the last report sent (last-report.json), written back to
// both copies before it is returned. It never decreases: when some of those files exist but none
// holds a valid value it throws Error(State) instead of starting again at 1.
uint64_t next_report_counter(const std::string& state_dir);

// Builds, signs, stores (state_dir/last-report.json) and POSTs the report. Throws Error(Network)
// when the server does not answer 2xx; the report file stays for inspection.
Json send_report(const update::AgentConfig& config, const Json& status);

// POSTs a JSON body with the transport's TLS settings; throws Error(Network) unless 2xx.
void post_json(const std::string& url, const std::string& body,
               const net::TransportOptions& transport);

} // namespace ota::service
