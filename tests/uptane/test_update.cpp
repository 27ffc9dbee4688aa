// The Uptane flow end to end: director + image repository over nginx, two secondaries (full and
// partial verification) as real ota-secondary processes, each switching its own A/B slots, and
// the director verifying the vehicle version manifest that lists the new versions.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "agent/uptane/http_manifest_sender.h"
#include "uptane/uptane_fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::test::uptane;

namespace {

std::string slot_image_sha256(const Secondary& s, const std::string& slot) {
    return file_sha256_hex(s.dir + "/slot-" + slot + ".img", static_cast<int64_t>(kImageSize));
}

} // namespace

TEST_CASE("uptane: one primary and two secondaries (full and partial verification) are updated "
          "from a director and an image repository") {
    Vehicle v;
    v.release("brake-ecu", 2, /*delta_from_v1=*/true);
    v.release("door-ecu", 2);
    // The full-verification ECU gets a delta, the partial one the full image.
    v.assign("brake-1", Vehicle::delta_target("brake-ecu", 2));
    v.assign("door-1", Vehicle::full_target("door-ecu", 2));
    const std::string v2 = file_sha256_hex(v.image(2));

    Vehicle::Cycle cycle = v.primary_update();
    REQUIRE(cycle.verification.targets.size() == 2);
    CHECK(cycle.verification.targets.at("brake-1").image.path ==
          Vehicle::delta_target("brake-ecu", 2));
    REQUIRE(cycle.secondaries.activated);
    for (const auto& out : cycle.secondaries.outcomes) {
        INFO(out.ecu_serial << ": " << out.error);
        CHECK(out.staged);
        CHECK(out.activated);
        CHECK(out.error.empty());
    }
    for (Secondary* s : {&v.full(), &v.partial()}) {
        INFO(s->serial);
        // Switched, not yet booted: B first with fresh tries, the ECU asked to reboot.
        auto env = v.printenv(*s);
        CHECK(env["BOOT_ORDER"] == "B A");
        CHECK(env["BOOT_B_LEFT"] == "3");
        // The ECU answers ACTIVATE first, then reboots.
        CHECK(wait_for_file(s->dir + "/reboot-requested"));
        CHECK(v.booted_slot(*s) == "A");
        CHECK(slot_image_sha256(*s, "B") == v2);
    }

    // Before the reboot the reports say the update is pending, the factory image runs.
    ManifestReceiver receiver;
    ota::uptane::HttpManifestSender sender(receiver.url());
    Json before = v.primary_manifest(sender);
    CHECK(v.last_reports.at("brake-1").pending == Vehicle::delta_target("brake-ecu", 2));
    CHECK_FALSE(v.last_reports.at("brake-1").installed);
    slice::Result pending = v.director_manifest(before);
    INFO(pending.output);
    CHECK(pending.status == 2);
    CHECK(pending.output.find("\"pending\"") != std::string::npos);

    for (Secondary* s : {&v.full(), &v.partial()}) {
        v.power_cycle(*s);
        INFO(s->serial);
        CHECK(v.booted_slot(*s) == "B");
        auto env = v.printenv(*s);
        CHECK(env["BOOT_ORDER"] == "B A");
        CHECK(env["BOOT_B_LEFT"] == "3"); // marked good after the health check
    }

    Json manifest = v.primary_manifest(sender);
    REQUIRE(receiver.bodies().size() == 2);
    // What reached the director is exactly what the primary signed.
    const Json received = parse_json(receiver.bodies().back(), "received manifest");
    CHECK(received == manifest);
    for (const auto& [serial, target] :
         {std::pair{"brake-1", Vehicle::delta_target("brake-ecu", 2)},
          std::pair{"door-1", Vehicle::full_target("door-ecu", 2)}}) {
        const auto& report = v.last_reports.at(serial);
        REQUIRE(report.installed);
        CHECK(report.installed->filepath == target);
        CHECK(report.installed->image_sha256 == v2);
        CHECK(report.installed_version == 2);
        CHECK_FALSE(report.pending);
        REQUIRE(report.last_result);
        CHECK(report.last_result->success);
    }
    slice::Result director = v.director_manifest(received);
    INFO(director.output);
    REQUIRE(director.status == 0);
    const Json status = parse_json(director.output, "director output");
    CHECK(status["verified"] == true);
    CHECK(status["ecus"]["brake-1"]["status"] == "up-to-date");
    CHECK(status["ecus"]["brake-1"]["installed_version"] == 2);
    CHECK(status["ecus"]["door-1"]["status"] == "up-to-date");
    CHECK(status["ecus"][kPrimarySerial]["status"] == "no-assignment");

    // A second cycle finds nothing to do: the secondaries already run their instructions.
    Vehicle::Cycle again = v.primary_update();
    CHECK(again.secondaries.outcomes.empty());
}
