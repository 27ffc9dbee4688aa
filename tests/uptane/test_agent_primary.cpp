// The agent as the vehicle's primary: the real ota-agent (configured with "uptane") on a simulated
// A/B ECU updates itself and two real ota-secondary processes (full and partial verification)
// from a director and an image repository over nginx on 127.0.0.1, and the director verifies the
// vehicle version manifest the agent POSTs.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "uptane/uptane_fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::uptane;

namespace {

// Every ECU of the vehicle gets version 2: the primary and door-1 the full image, brake-1 a delta.
void assign_version_2(Vehicle& v) {
    v.release(kPrimaryHw, 2);
    v.release("brake-ecu", 2, /*delta_from_v1=*/true);
    v.release("door-ecu", 2);
    v.assign(kPrimarySerial, Vehicle::full_target(kPrimaryHw, 2));
    v.assign("brake-1", Vehicle::delta_target("brake-ecu", 2));
    v.assign("door-1", Vehicle::full_target("door-ecu", 2));
}

// `ota-publish director manifest` of what the receiver got last.
Json director_verdict(Vehicle& v, const ManifestReceiver& receiver, int expected_status) {
    REQUIRE_FALSE(receiver.bodies().empty());
    slice::Result r = v.director_manifest(parse_json(receiver.bodies().back(), "manifest"));
    INFO(r.output);
    REQUIRE(r.status == expected_status);
    return parse_json(r.output, "director output");
}

std::string slot_sha256(const std::string& dir, const std::string& slot) {
    return file_sha256_hex(dir + "/slot-" + slot + ".img", static_cast<int64_t>(kImageSize));
}

} // namespace

TEST_CASE("uptane: ota-agent as the primary updates itself and both secondaries; the director "
          "verifies the manifest listing the new versions") {
    Vehicle v;
    assign_version_2(v);
    const std::string v2 = file_sha256_hex(v.image(2));
    ManifestReceiver receiver;
    v.agent_config(receiver.url());

    slice::Result update = v.agent("update");
    INFO(update.output);
    REQUIRE(update.status == 0);
    // Every ECU wrote version 2 into slot B and switched to it; none has booted it yet.
    CHECK(v.primary_env()["BOOT_ORDER"] == "B A");
    CHECK(file_exists(v.primary_dir() + "/reboot-requested"));
    CHECK(slot_sha256(v.primary_dir(), "B") == v2);
    for (Secondary* s : {&v.full(), &v.partial()}) {
        INFO(s->serial);
        CHECK(v.printenv(*s)["BOOT_ORDER"] == "B A");
        CHECK(wait_for_file(s->dir + "/reboot-requested"));
        CHECK(slot_sha256(s->dir, "B") == v2);
    }
    // The manifest sent before the reboots: authentic, every ECU's update pending.
    REQUIRE(receiver.bodies().size() == 1);
    Json pending = director_verdict(v, receiver, 2);
    for (const char* serial : {kPrimarySerial, "brake-1", "door-1"})
        CHECK(pending["ecus"][serial]["status"] == "pending");

    // Each ECU boots its new slot and commits it after its health check.
    for (Secondary* s : {&v.full(), &v.partial()}) {
        v.power_cycle(*s);
        CHECK(v.booted_slot(*s) == "B");
    }
    slice::Result boot = v.primary_power_cycle();
    INFO(boot.output);
    REQUIRE(boot.status == 0);
    v.agent_config(receiver.url()); // the secondaries' new ports

    // The daemon's next cycle has nothing to install and reports the vehicle as the director
    // wants it.
    slice::Result again = v.agent("daemon --once");
    INFO(again.output);
    REQUIRE(again.status == 0);
    CHECK(again.output.find("written, verified and switched") == std::string::npos);
    CHECK(again.output.find("vehicle version manifest sent") != std::string::npos);
    REQUIRE(receiver.bodies().size() == 2);
    Json done = director_verdict(v, receiver, 0);
    CHECK(done["verified"] == true);
    CHECK(done["ecus"][kPrimarySerial]["status"] == "up-to-date");
    CHECK(done["ecus"][kPrimarySerial]["installed_version"] == 2);
    CHECK(done["ecus"]["brake-1"]["status"] == "up-to-date");
    CHECK(done["ecus"]["brake-1"]["installed_version"] == 2);
    CHECK(done["ecus"]["door-1"]["status"] == "up-to-date");
    CHECK(done["ecus"]["door-1"]["installed_version"] == 2);
    CHECK(v.primary_env()["BOOT_ORDER"] == "B A");
}

TEST_CASE("uptane: ota-agent as the primary activates nothing when a secondary fails, names it, "
          "and completes the update once it is back") {
    Vehicle v;
    assign_version_2(v);
    ManifestReceiver receiver;
    v.agent_config(receiver.url());
    const std::string primary_a = file_hash(v.primary_dir() + "/slot-A.img");
    v.stop(v.partial()); // door-1 does not answer

    slice::Result update = v.agent("update");
    INFO(update.output);
    CHECK(update.status == 1);
    CHECK(update.output.find("door-1") != std::string::npos);
    CHECK(update.output.find("not activated") != std::string::npos);
    // No ECU switched: the primary's and brake-1's written slots B are not bootable.
    auto env = v.primary_env();
    CHECK(env["BOOT_ORDER"] == "A");
    CHECK(env["BOOT_B_LEFT"] == "0");
    CHECK_FALSE(file_exists(v.primary_dir() + "/reboot-requested"));
    CHECK(file_hash(v.primary_dir() + "/slot-A.img") == primary_a);
    CHECK(v.printenv(v.full())["BOOT_ORDER"] == "A");
    CHECK_FALSE(file_exists(v.full().dir + "/reboot-requested"));
    slice::Result status = v.agent("status --json");
    const Json st = parse_json(status.output, "status");
    CHECK(st["last_result"]["outcome"] == "failed");
    CHECK(st["last_result"]["message"].get<std::string>().find("door-1") != std::string::npos);
    // The director still hears from the vehicle: authentic, nothing installed, door-1 silent.
    REQUIRE(receiver.bodies().size() == 1);
    const Json failed = parse_json(receiver.bodies().back(), "manifest");
    CHECK_FALSE(failed["signed"]["ecu_version_reports"].contains("door-1"));

    // door-1 is back: the next cycle updates the whole vehicle.
    v.start(v.partial());
    v.agent_config(receiver.url());
    slice::Result retry = v.agent("update");
    INFO(retry.output);
    REQUIRE(retry.status == 0);
    CHECK(v.primary_env()["BOOT_ORDER"] == "B A");
    for (Secondary* s : {&v.full(), &v.partial()})
        CHECK(v.printenv(*s)["BOOT_ORDER"] == "B A");
}

TEST_CASE("uptane: a primary restarted after switching its secondaries finishes the same update") {
    Vehicle v;
    assign_version_2(v);
    ManifestReceiver receiver;
    // A primary that switched both secondaries, then lost power before its own switch (same
    // state folder as the agent's).
    Vehicle::Cycle first = v.primary_update();
    REQUIRE(first.secondaries.activated);
    REQUIRE(file_exists(v.path("primary/activation.json")));
    v.agent_config(receiver.url());

    slice::Result update = v.agent("update");
    INFO(update.output);
    REQUIRE(update.status == 0);
    CHECK(v.primary_env()["BOOT_ORDER"] == "B A");
    for (Secondary* s : {&v.full(), &v.partial()}) {
        INFO(s->serial);
        CHECK(v.printenv(*s)["BOOT_ORDER"] == "B A");
        v.power_cycle(*s);
        CHECK(v.booted_slot(*s) == "B");
    }
    REQUIRE(v.primary_power_cycle().status == 0);
    v.agent_config(receiver.url());
    REQUIRE(v.agent("update").status == 0);
    Json done = director_verdict(v, receiver, 0);
    for (const char* serial : {kPrimarySerial, "brake-1", "door-1"})
        CHECK(done["ecus"][serial]["status"] == "up-to-date");
    // Once every ECU committed, the record of the activation is gone.
    CHECK_FALSE(file_exists(v.path("primary/activation.json")));
}

TEST_CASE("uptane: the agent's \"uptane\" configuration is checked before anything runs; "
          "without instructions nothing changes") {
    Vehicle v;
    ManifestReceiver receiver;
    const std::string config = v.agent_config(receiver.url());
    Json agent = parse_json(read_all(config), "agent.json");
    auto validate_with = [&](const Json& changed) {
        write_all_file(config, changed.dump());
        return v.agent("validate");
    };
    SECTION("the repository keys of a plain TUF client are refused beside it") {
        Json c = agent;
        c["metadata_url"] = v.base_url() + "/image/metadata/";
        slice::Result r = validate_with(c);
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("metadata_url") != std::string::npos);
        CHECK(r.output.find("must not be set with \"uptane\"") != std::string::npos);
    }
    SECTION("the primary's hardware id must be the agent's") {
        Json c = agent;
        c["hardware_id"] = "other-unit";
        slice::Result r = validate_with(c);
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("primary.hardware_id") != std::string::npos);
    }
    SECTION("a missing Uptane file is named") {
        Json c = agent;
        c["uptane"] = "missing.json";
        slice::Result r = validate_with(c);
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(r.output.find("missing.json") != std::string::npos);
    }
    SECTION("with no instruction for any ECU, an update changes nothing and reports the vehicle") {
        slice::Result r = v.agent("update");
        INFO(r.output);
        CHECK(r.status == 0);
        CHECK(v.primary_env()["BOOT_ORDER"] == "A B");
        REQUIRE(receiver.bodies().size() == 1);
        Json verdict = director_verdict(v, receiver, 0);
        CHECK(verdict["ecus"][kPrimarySerial]["status"] == "no-assignment");
        CHECK(verdict["ecus"]["door-1"]["status"] == "no-assignment");
    }
    SECTION("as written it is valid, and nothing was installed by checking it") {
        slice::Result r = v.agent("validate");
        INFO(r.output);
        CHECK(r.status == 0);
        CHECK(v.primary_env()["BOOT_ORDER"] == "A B");
        CHECK(receiver.bodies().empty());
    }
}
