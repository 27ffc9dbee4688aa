// The primary's work for its secondaries (Uptane Standard, "What the Primary does", steps 5-7,
// and the version reports): check each secondary is the ECU configured, push it the metadata its
// verification mode needs, stream its image, and commit a multi-ECU update in two phases:
//   1. stage: every secondary verifies metadata and image and writes its inactive slot, which
//      stays unbootable;
//   2. activate: only when every secondary staged, each switches its boot order and reboots.
// If any secondary fails to stage, the staged ones are told to abort; nothing switches.
#pragma once
#include "agent/net/fetcher.h"
#include "agent/uptane/messages.h"
#include "agent/uptane/repositories.h"
#include "agent/uptane/secondary_client.h"
#include "agent/uptane/verification.h"
#include "agent/uptane/version_report.h"

#include <functional>
#include <string>
#include <vector>

namespace ota::uptane {

struct SecondaryConfig {
    std::string ecu_serial;
    std::string hardware_id;
    std::string host;
    uint16_t port = 0;
    VerificationMode verification = VerificationMode::Full;
    PublicKey key; // pinned: the secondary must present exactly this key
};

// GET_INFO, checked against the configuration (serial, hardware id, key, verification mode).
// Throws Error(WrongHardware) on a mismatch (another ECU answers at that address).
SecondaryInfo check_secondary_identity(SecondaryClient& client, const SecondaryConfig& ecu);

// What one secondary needs from the primary's trusted metadata: the director's roots after the
// one it trusts and its targets (partial), plus timestamp, snapshot and the image repository's
// metadata (full). Root files the primary no longer keeps are fetched from the repositories.
SecondaryMetadata metadata_for_secondary(const UptaneRepositories& repos, const SecondaryInfo& info,
                                         net::Fetcher& director_fetcher,
                                         net::Fetcher& image_fetcher);

struct SecondaryStep {
    SecondaryConfig ecu;
    VerifiedTarget target;
    std::string image_file; // the downloaded, verified target
};

struct SecondaryOutcome {
    std::string ecu_serial;
    bool staged = false;
    bool activated = false;
    uint64_t resumed_from = 0; // image bytes the secondary already held
    std::string error;         // why it failed ("" = no failure)
};

struct MultiEcuResult {
    bool activated = false; // every secondary staged and was switched
    std::vector<SecondaryOutcome> outcomes;
};

// before_activation: runs once every secondary staged, before the first ACTIVATE (the primary
// records that the switch began); a throw aborts the staged ones instead.
MultiEcuResult update_secondaries(const std::vector<SecondaryStep>& steps,
                                  const UptaneRepositories& repos, net::Fetcher& director_fetcher,
                                  net::Fetcher& image_fetcher, int timeout_s = 60,
                                  const std::function<void()>& before_activation = nullptr);

struct CheckedReport {
    Json document; // as signed by the ECU (goes into the vehicle version manifest)
    EcuVersionReport report;
};

// Asks for a version report with a fresh nonce and checks it: signed by the configured key, for
// that serial and hardware id, answering this nonce, counter above `last_counter`.
CheckedReport fetch_version_report(SecondaryClient& client, const SecondaryConfig& ecu,
                                   uint64_t last_counter = 0);

// True when the report shows `target` installed and committed: the director's name, length and
// hashes, and nothing pending. Otherwise false with the reason in *why.
bool report_shows_installed(const EcuVersionReport& report, const VerifiedTarget& target,
                            std::string* why);

std::string new_nonce();

} // namespace ota::uptane
