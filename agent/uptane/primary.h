// The primary ECU's Uptane cycle (Uptane Standard, "What the Primary does"), as steps the update
// engine calls:
//   refresh()            target selection: full verification of both repositories for the whole
//                        vehicle; target_for(serial) is what an ECU installs;
//   image_repository()   the verified image repository's client, for downloads;
//   update_secondaries() the secondaries' images downloaded, pushed and committed in two phases;
//   vehicle_manifest()   every ECU's checked version report, signed by the primary, for the
//                        director (sent with a ManifestSender).
// State in config.state_dir: trust/ (both repositories' metadata) and secondaries.json (the last
// report accepted from each secondary: its counter guards against replays, its installed image
// spares re-sending an update the ECU already runs, also after the primary restarted).
#pragma once
#include "agent/net/fetcher.h"
#include "agent/uptane/config.h"
#include "agent/uptane/manifest_sender.h"
#include "agent/uptane/repositories.h"
#include "agent/uptane/secondary_update.h"

#include <map>
#include <optional>
#include <string>

namespace ota::uptane {

class Primary {
public:
    Primary(UptaneConfig config, net::Fetcher& fetcher, tuf::Clock clock = tuf::system_time_now);

    // Throws ota::Error (the attack's kind); the trusted metadata is then unchanged.
    const VerificationResult& refresh();
    // The verified instruction for an ECU (nullopt: none). After refresh().
    std::optional<VerifiedTarget> target_for(const std::string& ecu_serial) const;
    tuf::Updater& image_repository();

    // Every secondary with an instruction it does not run yet (by its last report, if any):
    // its image is downloaded into download_dir (verified), then update_secondaries(). Before the
    // first ACTIVATE the secondaries being switched are recorded (activation.json): after a
    // restart, those whose report shows that instruction pending are sent ACTIVATE again instead
    // of the whole update (they may already be switched, and then refuse new metadata).
    MultiEcuResult update_secondaries(const std::string& download_dir);

    // Fetches and checks each reachable secondary's version report (as vehicle_manifest does),
    // so that update_secondaries() decides on what the ECUs run now. Unreachable ones are named
    // in *unreachable and keep their last report.
    void refresh_reports(std::vector<std::string>* unreachable = nullptr);

    // Collects and checks each secondary's report (fresh nonce, its key, counter above the last),
    // adds the primary's own report (`own`, signed here with the primary key) and signs the whole.
    // A secondary that does not answer is left out and named in *unreachable.
    Json vehicle_manifest(const EcuVersionReport& own,
                          std::vector<std::string>* unreachable = nullptr);
    void send_manifest(const Json& manifest, ManifestSender& sender) { sender.send(manifest); }

    const std::map<std::string, EcuVersionReport>& last_reports() const { return reports_; }
    const UptaneConfig& config() const { return config_; }

private:
    void save_reports() const;
    // Fetches one secondary's checked report into reports_/counters_; the signed document.
    Json fetch_report(const SecondaryConfig& ecu);
    std::map<std::string, std::string> load_activation() const; // serial -> target name
    void save_activation(const std::map<std::string, std::string>& activating) const;

    UptaneConfig config_;
    net::Fetcher& fetcher_;
    UptaneRepositories repositories_;
    SigningKey key_;
    std::optional<VerificationResult> verified_;
    std::map<std::string, uint64_t> counters_;
    std::map<std::string, EcuVersionReport> reports_;
};

} // namespace ota::uptane
