// A vehicle for the Uptane tests, everything real: an image repository and a director repository
// made by ota-publish and served by nginx on 127.0.0.1; two secondary ECUs, each a simulated A/B
// ECU (ota-sim files, U-Boot environment) driven by its own ota-secondary process on loopback TCP
// (one full, one partial verification); the primary, either the real ota-agent on a simulated
// ECU or played by the test through the uptane library; and a receiver for the vehicle version
// manifest.
#pragma once
#include "agent/common/canonical_json.h"
#include "agent/uptane/config.h"
#include "agent/uptane/manifest_sender.h"
#include "agent/uptane/repositories.h"
#include "agent/uptane/secondary_update.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <thread>
#include <vector>

namespace ota::test::uptane {

constexpr const char* kVehicle = "VIN-TEST-0001";
constexpr const char* kPrimarySerial = "primary-1";
constexpr const char* kPrimaryHw = "head-unit";
constexpr uint64_t kImageSize = 1ull << 20;
constexpr uint64_t kSlotSize = 2ull << 20;

// HTTP/1.1 receiver on 127.0.0.1: answers every POST 200 and keeps its body.
class ManifestReceiver {
public:
    ManifestReceiver();
    ~ManifestReceiver();
    std::string url() const;
    std::vector<std::string> bodies() const;

private:
    void serve();
    int fd_ = -1;
    int port_ = 0;
    bool stop_ = false;
    mutable std::mutex mutex_;
    std::vector<std::string> bodies_;
    std::thread thread_;
};

struct Secondary {
    std::string serial;
    std::string hardware_id;
    std::string mode; // "full" or "partial"
    std::string dir;  // the simulated ECU (slots, uboot.env, booted-slot)
    std::string config;
    std::string state_dir;
    std::string key;
    std::string log;
    pid_t pid = -1;
    int port = 0;
};

// Everything an attack must leave as it was on a secondary.
struct SecondarySnapshot {
    std::string slot_a, slot_b, env, booted, trust; // hashes / listings
    Json state;
    bool operator==(const SecondarySnapshot& o) const {
        return slot_a == o.slot_a && slot_b == o.slot_b && env == o.env && booted == o.booted &&
               trust == o.trust && state == o.state;
    }
};

class Vehicle {
public:
    Vehicle();
    ~Vehicle();

    std::string path(const std::string& rel) const { return tmp_.file(rel); }
    std::string image_repo() const { return path("www/image"); }
    std::string director_repo() const { return path("www/director"); }
    std::string base_url() const;

    Secondary& secondary(const std::string& serial);
    Secondary& full() { return secondaries_.at(0); }
    Secondary& partial() { return secondaries_.at(1); }

    // `ota-sim make-image` (cached), `ota-publish release` of it for `hardware_id` (full, and a
    // delta from version 1 when asked) and `ota-publish director assign`.
    std::string image(uint64_t version, const std::string& health = "ok");
    void release(const std::string& hardware_id, uint64_t version, bool delta_from_v1 = false,
                 const std::string& health = "ok");
    void assign(const std::string& serial, const std::string& target);
    static std::string full_target(const std::string& hw, uint64_t version);
    static std::string delta_target(const std::string& hw, uint64_t version);

    // ota-publish / ota-sim; REQUIREs success and returns the output.
    std::string publish(const std::string& args);
    slice::Result publish_status(const std::string& args);
    std::string sim(const std::string& args);

    void start(Secondary& s);
    void stop(Secondary& s); // SIGTERM while idle; REQUIREs a clean exit
    // Stops the process, powers the simulated ECU on (the boot script), starts it again.
    void power_cycle(Secondary& s);

    // The primary's configuration (ports of the running secondaries), written to primary.json;
    // with `manifest_url` when given. Secondaries listen on a new port after each start: write it
    // again after start() and power_cycle().
    ota::uptane::UptaneConfig primary_config(const std::string& manifest_url = "") const;

    // The primary as the real agent: a simulated ECU (ota-sim, slot A holds version 1 for
    // kPrimaryHw) and agent.json naming primary.json ("uptane"). Made at the first call.
    std::string agent_config(const std::string& manifest_url);
    std::string primary_dir() const { return path("primary-ecu"); }
    // `ota-agent --config agent.json ARGS` (stdout and stderr).
    slice::Result agent(const std::string& args) const;
    // Powers the primary's simulated ECU on (the boot script) and runs `ota-agent boot-check`.
    slice::Result primary_power_cycle();
    std::map<std::string, std::string> primary_env() const;
    const SigningKey& primary_key() const { return *primary_key_; }

    // One update cycle of the primary (ota::uptane::Primary, as the agent will run it): full
    // verification of both repositories, download of every instructed secondary image not yet
    // installed, two-phase update of those secondaries.
    struct Cycle {
        ota::uptane::VerificationResult verification;
        ota::uptane::MultiEcuResult secondaries;
    };
    Cycle primary_update(tuf::Clock clock = tuf::system_time_now);
    // Version reports of every ECU (each checked: key, serial, nonce, counter), the vehicle
    // version manifest signed by the primary, sent with `sender`.
    Json primary_manifest(ota::uptane::ManifestSender& sender);
    std::map<std::string, ota::uptane::EcuVersionReport> last_reports;

    // `ota-publish director manifest` of a manifest (written to a file first).
    slice::Result director_manifest(const Json& manifest);

    // Changes the director's targets body and publishes it (validly signed): a director whose
    // online keys are compromised, or an operator's mistake.
    void edit_director(const std::function<void(Json& targets_body)>& change);
    // The metadata as served, unverified: what a compromised primary could push to `s`.
    ota::uptane::SecondaryMetadata served_metadata(const Secondary& s);
    // PUT_METADATA straight to a secondary.
    std::optional<ota::uptane::ImageOffer> push(const Secondary& s,
                                                const ota::uptane::SecondaryMetadata& m);
    ota::uptane::SecondaryClient client(const Secondary& s) const;
    // The signed report of a secondary, fetched by hand (nonce "test").
    Json raw_report(const Secondary& s);

    SecondarySnapshot snapshot(const Secondary& s) const;
    std::map<std::string, std::string> primary_trust() const; // file -> sha256
    std::string booted_slot(const Secondary& s) const;
    std::map<std::string, std::string> printenv(const Secondary& s) const;

private:
    TempDir tmp_;
    std::unique_ptr<slice::Nginx> nginx_;
    std::vector<Secondary> secondaries_;
    std::unique_ptr<SigningKey> primary_key_;
    std::map<std::string, std::string> images_;
    uint64_t primary_counter_ = 0;
    int starts_ = 0;
};

// Waits (at most 30 s) until `path` exists; false if it never appeared.
bool wait_for_file(const std::string& path);
// SHA-256 of a file, "" when absent.
std::string file_hash(const std::string& path);
// Every file below `dir` with its SHA-256 (relative names).
std::map<std::string, std::string> tree_hashes(const std::string& dir);

} // namespace ota::test::uptane
