// Uptane's threat model, each attack performed and refused with nothing changed: the primary's
// trusted metadata, and each secondary's slots, boot environment, trusted metadata and update
// state stay as they were. Secondaries are attacked through a compromised primary too (metadata
// pushed without verification), since a secondary must not rely on its primary's checks.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/uptane/json_fields.h"
#include "agent/uptane/protocol.h"
#include "agent/uptane/vehicle_manifest.h"
#include "manifests/publisher/repository.h"
#include "uptane/uptane_fixture.h"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::uptane;
using namespace ota::uptane;

namespace {

template <typename F> void require_refused(F&& f, ErrorKind kind, const std::string& text) {
    try {
        f();
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(error_kind_name(e.kind()) == std::string(error_kind_name(kind)));
        CHECK(std::string(e.what()).find(text) != std::string::npos);
        return;
    }
    FAIL("expected a refusal (" << error_kind_name(kind) << ": " << text << ")");
}

// A director entry as `assign` writes it, for hand-made (forged) instructions.
Json director_entry(Vehicle& v, const std::string& target,
                    const std::map<std::string, std::string>& ecus) {
    const Json image = parse_json(read_all(v.image_repo() + "/metadata/targets.json"), "targets");
    Json entry = image["signed"]["targets"].at(target);
    for (const auto& [serial, hw] : ecus)
        entry["custom"]["ecu_identifiers"][serial] = Json{{"hardware_id", hw}};
    return entry;
}

struct Baseline {
    std::map<std::string, std::string> primary;
    SecondarySnapshot full, partial;
};

Baseline baseline(Vehicle& v) {
    return Baseline{v.primary_trust(), v.snapshot(v.full()), v.snapshot(v.partial())};
}

void require_unchanged(Vehicle& v, const Baseline& before) {
    CHECK(v.primary_trust() == before.primary);
    CHECK(v.snapshot(v.full()) == before.full);
    CHECK(v.snapshot(v.partial()) == before.partial);
}

// The attack the secondary refused is in its next version report.
void require_reported_attack(Vehicle& v, const Secondary& s, const std::string& text) {
    Json report = v.raw_report(s);
    const std::string attacks = report["signed"]["attacks_detected"].get<std::string>();
    INFO(attacks);
    CHECK(attacks.find(text) != std::string::npos);
}

void raise_director_targets_threshold(Vehicle& v) {
    const std::string dir = v.director_repo();
    publish::Repository repo = publish::Repository::open(dir);
    SigningKey second = SigningKey::generate(kSchemeEcdsaP256);
    write_file_atomic(dir + "/keys/targets-1.pem", second.private_pem());
    Json& root = repo.role("root").body;
    root["keys"][publish::key_id(second)] = publish::key_object(second);
    root["roles"]["targets"]["keyids"].push_back(publish::key_id(second));
    root["roles"]["targets"]["threshold"] = 2;
    root["version"] = root["version"].get<uint64_t>() + 1;
    std::vector<const SigningKey*> signers;
    for (const auto& k : repo.role("root").keys)
        signers.push_back(&k);
    const std::string bytes = publish::to_bytes(publish::sign_envelope(root, signers));
    write_file_atomic(
        dir + "/metadata/" + std::to_string(root["version"].get<uint64_t>()) + ".root.json", bytes);
    write_file_atomic(dir + "/metadata/root.json", bytes);
    publish::Repository::open(dir).publish(); // signed by both targets keys
}

} // namespace

TEST_CASE("uptane attack: the director and the image repository disagree (hash, length, name)") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.primary_update(); // the director's (empty) instructions are trusted
    const Baseline before = baseline(v);
    const std::string target = Vehicle::full_target("brake-ecu", 2);
    std::string kind;

    SECTION("hash") {
        v.edit_director([&](Json& body) {
            Json e = director_entry(v, target, {{"brake-1", "brake-ecu"}});
            e["hashes"]["sha256"] = std::string(64, 'a');
            body["targets"][target] = e;
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::HashMismatch,
                        "hashes differ from the image repository's");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); },
                        ErrorKind::HashMismatch, "hashes differ from the image repository's");
        require_unchanged(v, before);
        require_reported_attack(v, v.full(), "hashes differ");
    }
    SECTION("length") {
        v.edit_director([&](Json& body) {
            Json e = director_entry(v, target, {{"brake-1", "brake-ecu"}});
            e["length"] = e["length"].get<uint64_t>() + 1;
            body["targets"][target] = e;
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::HashMismatch,
                        "bytes, the image repository");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); },
                        ErrorKind::HashMismatch, "bytes, the image repository");
        require_unchanged(v, before);
    }
    SECTION("name") {
        // The image's length and hashes under a name the image repository does not sign.
        v.edit_director([&](Json& body) {
            body["targets"]["brake-ecu/rootfs-9.full.bundle"] =
                director_entry(v, target, {{"brake-1", "brake-ecu"}});
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::NotFound,
                        "the image repository signs no target of that name");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); }, ErrorKind::NotFound,
                        "signs no target of that name");
        require_unchanged(v, before);
    }
}

TEST_CASE("uptane attack: an instruction for another ECU's serial or hardware id") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.release("door-ecu", 2);
    v.primary_update();
    const Baseline before = baseline(v);
    const std::string brake = Vehicle::full_target("brake-ecu", 2);
    const std::string door = Vehicle::full_target("door-ecu", 2);

    SECTION("a serial that is not in this vehicle") {
        v.edit_director([&](Json& body) {
            body["targets"][brake] = director_entry(v, brake, {{"ghost-9", "brake-ecu"}});
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::WrongHardware,
                        "ECU ghost-9, which is not in vehicle");
        require_unchanged(v, before);
    }
    SECTION("another hardware id for a secondary (full verification)") {
        v.edit_director([&](Json& body) {
            body["targets"][door] = director_entry(v, door, {{"brake-1", "door-ecu"}});
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::WrongHardware,
                        "names hardware id door-ecu, the ECU is brake-ecu");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); },
                        ErrorKind::WrongHardware, "names hardware id door-ecu");
        require_unchanged(v, before);
        require_reported_attack(v, v.full(), "door-ecu");
    }
    SECTION("another hardware's image for a secondary (partial verification)") {
        // Right serial and hardware id, but the image repository signs the image for brakes.
        v.edit_director([&](Json& body) {
            body["targets"][brake] = director_entry(v, brake, {{"door-1", "door-ecu"}});
        });
        require_refused([&] { v.primary_update(); }, ErrorKind::WrongHardware,
                        "signs it for hardware brake-ecu, not door-ecu");
        require_refused([&] { v.push(v.partial(), v.served_metadata(v.partial())); },
                        ErrorKind::WrongHardware, "as an image for other hardware");
        require_unchanged(v, before);
        require_reported_attack(v, v.partial(), "other hardware");
    }
    SECTION("a compromised primary streams one ECU the image instructed for another") {
        v.assign("brake-1", brake);
        v.assign("door-1", door);
        REQUIRE(v.push(v.full(), v.served_metadata(v.full())));
        const Baseline accepted = baseline(v);
        {
            SecondaryClient client = v.client(v.full());
            const Json targets = parse_json(read_all(v.image_repo() + "/metadata/targets.json"),
                                            "t")["signed"]["targets"];
            ImageOffer offer{door,
                             targets[door]["length"].get<uint64_t>(),
                             {{"sha256", targets[door]["hashes"]["sha256"].get<std::string>()}}};
            require_refused(
                [&] {
                    client.request(protocol::MessageType::ImageBegin,
                                   protocol::dump_body(offer_to_json(offer)));
                },
                ErrorKind::HashMismatch, "is not the one the director instructs this ECU");
        } // one connection at a time: this one ends before the next
        CHECK(v.snapshot(v.full()) == accepted.full);
        require_reported_attack(v, v.full(), "not the one the director instructs");
    }
}

TEST_CASE("uptane attack: replayed vehicle manifests and ECU reports") {
    Vehicle v;
    struct Collect : ManifestSender {
        void send(const Json&) override {}
    } sender;
    const Json first = v.primary_manifest(sender);
    slice::Result accepted = v.director_manifest(first);
    INFO(accepted.output);
    REQUIRE(accepted.status == 0);
    const std::string inventory = read_all(v.director_repo() + "/inventory.json");

    SECTION("the same manifest again") {
        slice::Result r = v.director_manifest(first);
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("replayed") != std::string::npos);
        CHECK(read_all(v.director_repo() + "/inventory.json") == inventory);
    }
    SECTION("an old ECU report inside a new manifest signed by the primary") {
        const Json second = v.primary_manifest(sender);
        std::map<std::string, Json> reports;
        for (auto it = second["signed"]["ecu_version_reports"].begin();
             it != second["signed"]["ecu_version_reports"].end(); ++it)
            reports[it.key()] = *it;
        reports["brake-1"] = first["signed"]["ecu_version_reports"]["brake-1"];
        const Json mixed =
            sign_vehicle_manifest(kVehicle, kPrimarySerial, reports, v.primary_key());
        slice::Result r = v.director_manifest(mixed);
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("ECU version report of brake-1 is replayed") != std::string::npos);
        CHECK(read_all(v.director_repo() + "/inventory.json") == inventory);
        // The refusal changed nothing: the genuine manifest is still accepted.
        CHECK(v.director_manifest(second).status == 0);
    }
    SECTION("a report signed by another ECU's key") {
        EcuVersionReport forged =
            report_from_json(first["signed"]["ecu_version_reports"]["brake-1"]["signed"]);
        forged.counter += 100;
        const Json second = v.primary_manifest(sender);
        std::map<std::string, Json> reports;
        for (auto it = second["signed"]["ecu_version_reports"].begin();
             it != second["signed"]["ecu_version_reports"].end(); ++it)
            reports[it.key()] = *it;
        reports["brake-1"] =
            sign_report(forged, SigningKey::from_pem(read_all(v.partial().key))); // door-1's key
        slice::Result r = v.director_manifest(
            sign_vehicle_manifest(kVehicle, kPrimarySerial, reports, v.primary_key()));
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("not signed by that ECU's key") != std::string::npos);
        CHECK(read_all(v.director_repo() + "/inventory.json") == inventory);
    }
    SECTION("a manifest not signed by the vehicle's primary") {
        std::map<std::string, Json> reports;
        for (auto it = first["signed"]["ecu_version_reports"].begin();
             it != first["signed"]["ecu_version_reports"].end(); ++it)
            reports[it.key()] = *it;
        slice::Result r = v.director_manifest(sign_vehicle_manifest(
            kVehicle, kPrimarySerial, reports, SigningKey::generate(kSchemeEcdsaP256)));
        CHECK(r.status == 1);
        CHECK(r.output.find("not signed by the key of primary") != std::string::npos);
    }
    SECTION("the primary refuses a replayed report (a stale answer on the network)") {
        // A man in the middle answers GET_VERSION_REPORT with brake-1's earlier, genuine report.
        const Json old = first["signed"]["ecu_version_reports"]["brake-1"];
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        REQUIRE(::listen(fd, 1) == 0);
        std::thread replayer([&] {
            int c = ::accept(fd, nullptr, nullptr);
            if (c < 0) return;
            protocol::Connection conn(c, 30);
            protocol::Frame f;
            if (conn.receive(f))
                conn.send(f.type | protocol::kResponseBit,
                          protocol::dump_body(protocol::ok_response(Json{{"report", old}})));
        });
        ota::uptane::UptaneConfig config = v.primary_config();
        SecondaryConfig brake = config.secondaries.at(0);
        SecondaryClient client("127.0.0.1", ntohs(addr.sin_port), 30);
        require_refused([&] { fetch_version_report(client, brake); }, ErrorKind::Rollback,
                        "stale or replayed nonce");
        replayer.join();
        ::close(fd);
        // And by its counter, even were the nonce right.
        require_refused(
            [&] {
                verify_report(old, "brake-1", brake.key, report_from_json(old["signed"]).counter);
            },
            ErrorKind::Rollback, "replayed");
    }
}

TEST_CASE("uptane attack: a secondary that reports a wrong image is not counted as updated") {
    Vehicle v;
    struct Collect : ManifestSender {
        void send(const Json&) override {}
    } sender;

    SECTION("its new image does not come up: the bootloader falls back") {
        v.release("door-ecu", 2, false, "panic");
        v.assign("door-1", Vehicle::full_target("door-ecu", 2));
        const std::string slot_a = file_hash(v.partial().dir + "/slot-A.img");
        REQUIRE(v.primary_update().secondaries.activated);
        v.power_cycle(v.partial());
        CHECK(v.booted_slot(v.partial()) == "A");
        CHECK(file_hash(v.partial().dir + "/slot-A.img") == slot_a);
        CHECK(v.printenv(v.partial())["BOOT_ORDER"] == "A"); // B marked bad
        const Json manifest = v.primary_manifest(sender);
        const EcuVersionReport& report = v.last_reports.at("door-1");
        CHECK_FALSE(report.installed);
        CHECK(report.installed_version == 1);
        REQUIRE(report.last_result);
        CHECK_FALSE(report.last_result->success);
        CHECK(report.last_result->message.find("did not come up") != std::string::npos);
        slice::Result r = v.director_manifest(manifest);
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK(parse_json(r.output, "out")["ecus"]["door-1"]["status"] == "differs");
    }
    SECTION("its new image fails the health check") {
        v.release("door-ecu", 2, false, "fail");
        v.assign("door-1", Vehicle::full_target("door-ecu", 2));
        REQUIRE(v.primary_update().secondaries.activated);
        v.power_cycle(v.partial()); // B comes up, fails its check, switches back, reboots
        CHECK(v.booted_slot(v.partial()) == "B");
        CHECK(wait_for_file(v.partial().dir + "/reboot-requested"));
        v.power_cycle(v.partial());
        CHECK(v.booted_slot(v.partial()) == "A");
        v.primary_manifest(sender);
        const EcuVersionReport& report = v.last_reports.at("door-1");
        CHECK_FALSE(report.installed);
        REQUIRE(report.last_result);
        CHECK(report.last_result->message.find("health check") != std::string::npos);
    }
    SECTION("a report of an image other than the one instructed") {
        v.release("brake-ecu", 2);
        v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
        Vehicle::Cycle cycle = v.primary_update();
        REQUIRE(cycle.secondaries.activated);
        v.power_cycle(v.full());
        v.primary_manifest(sender);
        // The ECU (its key compromised, or a supplier's image swapped) claims other bytes.
        EcuVersionReport lie = v.last_reports.at("brake-1");
        REQUIRE(lie.installed);
        lie.installed->hashes["sha256"] = std::string(64, 'b');
        lie.counter += 1;
        const VerifiedTarget& instructed = cycle.verification.targets.at("brake-1");
        std::string why;
        CHECK_FALSE(report_shows_installed(lie, instructed, &why));
        CHECK(why.find("other length or hashes") != std::string::npos);
        const Json manifest = v.primary_manifest(sender);
        std::map<std::string, Json> reports;
        for (auto it = manifest["signed"]["ecu_version_reports"].begin();
             it != manifest["signed"]["ecu_version_reports"].end(); ++it)
            reports[it.key()] = *it;
        lie.counter = v.last_reports.at("brake-1").counter + 1;
        reports["brake-1"] = sign_report(lie, SigningKey::from_pem(read_all(v.full().key)));
        slice::Result r = v.director_manifest(
            sign_vehicle_manifest(kVehicle, kPrimarySerial, reports, v.primary_key()));
        INFO(r.output);
        CHECK(r.status == 2);
        CHECK(parse_json(r.output, "out")["ecus"]["brake-1"]["status"] == "differs");
    }
}

TEST_CASE("uptane attack: a compromised director key below the threshold") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.release("door-ecu", 2);
    raise_director_targets_threshold(v); // root 2: targets needs 2 of 2 keys
    v.primary_update();                  // rotation accepted
    const Baseline before = baseline(v);

    // The attacker holds one of the two targets keys (and the online snapshot/timestamp keys).
    publish::Repository repo = publish::Repository::open(v.director_repo());
    REQUIRE(repo.role("targets").keys.size() == 2);
    repo.role("targets").keys.pop_back();
    repo.role("targets").body["targets"][Vehicle::full_target("brake-ecu", 2)] =
        director_entry(v, Vehicle::full_target("brake-ecu", 2), {{"brake-1", "brake-ecu"}});
    repo.role("targets").body["targets"][Vehicle::full_target("door-ecu", 2)] =
        director_entry(v, Vehicle::full_target("door-ecu", 2), {{"door-1", "door-ecu"}});
    repo.publish();

    require_refused([&] { v.primary_update(); }, ErrorKind::BadSignature,
                    "1 valid signature(s), threshold is 2");
    require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); }, ErrorKind::BadSignature,
                    "threshold is 2");
    require_refused([&] { v.push(v.partial(), v.served_metadata(v.partial())); },
                    ErrorKind::BadSignature, "threshold is 2");
    require_unchanged(v, before);
    require_reported_attack(v, v.partial(), "threshold is 2");
}

TEST_CASE("uptane attack: freeze and rollback of the director's metadata") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.release("door-ecu", 2);

    SECTION("freeze: metadata expired at the primary's reference time") {
        v.primary_update();
        const Baseline before = baseline(v);
        const int64_t later = tuf::system_time_now() + 30 * 86400; // timestamps last a week
        require_refused([&] { v.primary_update([later] { return later; }); }, ErrorKind::Expired,
                        "expired");
        require_unchanged(v, before);
    }
    SECTION("freeze: expired director metadata pushed to the secondaries") {
        v.primary_update();
        const Baseline before = baseline(v);
        // A director repository frozen in the past: every role it signs has expired.
        Json settings = parse_json(read_all(v.director_repo() + "/publisher.json"), "p");
        settings["expires_days"] = -1;
        settings["timestamp_days"] = -1;
        write_all_file(v.director_repo() + "/publisher.json", settings.dump());
        v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
        v.assign("door-1", Vehicle::full_target("door-ecu", 2));
        require_refused([&] { v.primary_update(); }, ErrorKind::Expired, "expired");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); }, ErrorKind::Expired,
                        "expired");
        require_refused([&] { v.push(v.partial(), v.served_metadata(v.partial())); },
                        ErrorKind::Expired, "director targets expired");
        require_unchanged(v, before);
    }
    SECTION("rollback: older director metadata after newer was accepted") {
        v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
        REQUIRE(run_command("cp -a " + slice::quote(v.director_repo() + "/metadata") + " " +
                            slice::quote(v.path("old-director-metadata"))) == 0);
        v.assign("door-1", Vehicle::full_target("door-ecu", 2));
        REQUIRE(v.primary_update().secondaries.activated);
        v.power_cycle(v.full());
        v.power_cycle(v.partial());
        const Baseline before = baseline(v);
        // The attacker serves the older, validly signed metadata again.
        REQUIRE(run_command("rm -rf " + slice::quote(v.director_repo() + "/metadata") +
                            " && cp -a " + slice::quote(v.path("old-director-metadata")) + " " +
                            slice::quote(v.director_repo() + "/metadata")) == 0);
        require_refused([&] { v.primary_update(); }, ErrorKind::Rollback, "older than the trusted");
        require_refused([&] { v.push(v.full(), v.served_metadata(v.full())); }, ErrorKind::Rollback,
                        "older than the trusted");
        require_refused([&] { v.push(v.partial(), v.served_metadata(v.partial())); },
                        ErrorKind::Rollback, "older than the trusted");
        require_unchanged(v, before);
    }
}
