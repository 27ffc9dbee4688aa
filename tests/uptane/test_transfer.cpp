// The multi-ECU update under failures: a secondary cut off in the middle of its image keeps the
// update pending with nothing half-applied, and resumes where it stopped; a secondary that cannot
// stage makes the whole update abort, so no ECU switches.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/uptane/protocol.h"
#include "uptane/uptane_fixture.h"

#include <catch2/catch.hpp>

#include <sys/socket.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::uptane;
using namespace ota::uptane;

TEST_CASE("uptane: a secondary cut off mid-transfer keeps the update pending, then resumes") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
    Secondary& brake = v.full();
    const SecondarySnapshot factory = v.snapshot(brake);

    // The primary's part by hand, up to the middle of the image.
    const UptaneConfig config = v.primary_config();
    net::CurlFetcher fetcher;
    UptaneRepositories repos(config.trust_dir(), config.director, config.image);
    VerificationResult verified =
        repos.refresh_and_verify(fetcher, fetcher, config.vehicle_id, config.vehicle_ecus(), true);
    const VerifiedTarget& target = verified.targets.at("brake-1");
    const std::string image = v.path("brake-image.bundle");
    repos.image_updater().download_target(target.image, image);
    const std::string bytes = read_all(image);
    const size_t chunk = 64 * 1024;
    REQUIRE(bytes.size() > 4 * chunk);
    uint64_t sent = 0;
    {
        SecondaryClient client = v.client(brake);
        SecondaryInfo info = check_secondary_identity(client, config.secondaries.at(0));
        REQUIRE(client.put_metadata(metadata_for_secondary(repos, info, fetcher, fetcher)));
        Json begin = client.request(protocol::MessageType::ImageBegin,
                                    protocol::dump_body(offer_to_json(offer_of(target.director))));
        REQUIRE(begin["offset"] == 0);
        for (int i = 0; i < 3; ++i, sent += chunk)
            client.connection().send(static_cast<uint8_t>(protocol::MessageType::ImageData),
                                     bytes.substr(sent, chunk));
        SECTION("cut between frames") {}
        SECTION("cut in the middle of a frame") {
            // A header announcing a whole chunk, then only part of it.
            const std::string frame = protocol::encode_frame(
                static_cast<uint8_t>(protocol::MessageType::ImageData), bytes.substr(sent, chunk));
            REQUIRE(::send(client.connection().fd(), frame.data(), 1000, MSG_NOSIGNAL) == 1000);
        }
    } // the connection is cut

    // Nothing half-applied: slots and boot environment as before, nothing staged or pending.
    SecondarySnapshot now = v.snapshot(brake);
    CHECK(now.slot_a == factory.slot_a);
    CHECK(now.slot_b == factory.slot_b);
    CHECK(now.env == factory.env);
    CHECK(now.booted == "A");
    CHECK(now.state["staged"].is_null());
    CHECK(now.state["activated"].is_null());
    CHECK(now.state["instruction"]["filepath"] == target.director.path); // the update is pending
    CHECK(file_size(brake.state_dir + "/image.partial") == sent);
    Json report = v.raw_report(brake);
    CHECK(report["signed"]["installed_image"].is_null());
    CHECK(report["signed"]["pending"].is_null());

    // The next cycle resumes where the transfer stopped and completes the update.
    Vehicle::Cycle cycle = v.primary_update();
    REQUIRE(cycle.secondaries.outcomes.size() == 1);
    INFO(cycle.secondaries.outcomes[0].error);
    CHECK(cycle.secondaries.outcomes[0].resumed_from == sent);
    REQUIRE(cycle.secondaries.activated);
    v.power_cycle(brake);
    CHECK(v.booted_slot(brake) == "B");
    CHECK(file_sha256_hex(brake.dir + "/slot-B.img", static_cast<int64_t>(kImageSize)) ==
          file_sha256_hex(v.image(2)));
}

TEST_CASE("uptane: a secondary that cannot stage aborts the whole update; no ECU switches") {
    Vehicle v;
    v.release("brake-ecu", 2);
    v.release("door-ecu", 2);
    v.assign("brake-1", Vehicle::full_target("brake-ecu", 2));
    v.assign("door-1", Vehicle::full_target("door-ecu", 2));
    const std::string slot_a = file_hash(v.full().dir + "/slot-A.img");
    const UptaneConfig config = v.primary_config(); // addresses of both, then door-1 goes away
    v.stop(v.partial());

    Vehicle::Cycle cycle = v.primary_update();
    CHECK_FALSE(cycle.secondaries.activated);
    REQUIRE(cycle.secondaries.outcomes.size() == 2);
    const SecondaryOutcome& brake = cycle.secondaries.outcomes[0];
    const SecondaryOutcome& door = cycle.secondaries.outcomes[1];
    CHECK(brake.ecu_serial == "brake-1");
    CHECK(brake.staged);
    CHECK_FALSE(brake.activated);
    CHECK(brake.error.find("aborted") != std::string::npos);
    CHECK(door.ecu_serial == "door-1");
    CHECK_FALSE(door.staged);
    CHECK(door.error.find("cannot connect") != std::string::npos);

    // brake-1 wrote its slot B but never switched: B is not bootable, A runs on.
    auto env = v.printenv(v.full());
    CHECK(env["BOOT_ORDER"] == "A");
    CHECK(env["BOOT_B_LEFT"] == "0");
    v.power_cycle(v.full());
    CHECK(v.booted_slot(v.full()) == "A");
    CHECK(file_hash(v.full().dir + "/slot-A.img") == slot_a);
    Json report = v.raw_report(v.full());
    CHECK(report["signed"]["installed_image"].is_null());
    CHECK(report["signed"]["pending"].is_null());
    CHECK(report["signed"]["last_result"]["message"] == "aborted by the primary");

    // With door-1 back, the next cycle updates both.
    v.start(v.partial());
    Vehicle::Cycle retry = v.primary_update();
    CHECK(retry.secondaries.activated);
}
