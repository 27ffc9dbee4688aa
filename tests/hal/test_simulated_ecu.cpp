// The simulated ECU: images, the boot-counting simulator, and the ota-sim program.
#include "agent/common/error.h"
#include "hal/sim/sim_image.h"
#include "hal/sim/simulated_ecu.h"
#include "hal_test_helpers.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace ota;
using namespace ota::hal;
using namespace ota::hal::sim;
using ota::test::TempDir;

namespace {

constexpr uint64_t kImageSize = 256 * 1024;
constexpr uint64_t kSlotSize = 512 * 1024;

size_t differing_bytes(const std::string& a, const std::string& b) {
    size_t n = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        n += a[i] != b[i];
    return n + std::max(a.size(), b.size()) - std::min(a.size(), b.size());
}

// Writes an image into a slot the way the agent does: mark bad, write, set primary, reboot.
void install(SimulatedEcu& ecu, const std::string& slot, const std::string& image) {
    auto bc = ecu.boot_control();
    bc->mark_bad(slot);
    std::string padded = image + std::string(kSlotSize - image.size(), '\0');
    ota::test::write_all_file(ecu.slot_device(slot), padded);
    bc->set_primary(slot, 3);
    ecu.rebooter()->reboot();
}

struct Ecu {
    TempDir dir;
    SimulatedEcu ecu;
    explicit Ecu(bool redundant = false) : ecu(make(dir, redundant)) {}
    static SimulatedEcu make(const TempDir& dir, bool redundant) {
        ota::test::write_all_file(dir.file("v1.img"),
                                  make_sim_image(1, SimHealth::Ok, kImageSize, 42));
        return SimulatedEcu::create(dir.file("ecu"), kSlotSize, dir.file("v1.img"), redundant);
    }
    BootState state() { return ecu.boot_control()->state(); }
};

} // namespace

TEST_CASE("simulated images: header, determinism, small differences between versions") {
    std::string v1 = make_sim_image(1, SimHealth::Ok, kImageSize, 7);
    std::string v2 = make_sim_image(2, SimHealth::Ok, kImageSize, 7);
    CHECK(v1.size() == kImageSize);
    CHECK(v1.rfind("OTA-SIM-IMAGE version=1 health=ok\n", 0) == 0);
    CHECK(v1 == make_sim_image(1, SimHealth::Ok, kImageSize, 7));
    CHECK(v1 != make_sim_image(1, SimHealth::Ok, kImageSize, 8));
    size_t diff = differing_bytes(v1, v2);
    CHECK(diff > 0);
    CHECK(diff < kImageSize / 10); // a few regions, so deltas are small
    // The health only changes the header, not the body at the same offsets.
    std::string v2panic = make_sim_image(2, SimHealth::Panic, kImageSize, 7);
    CHECK(v2panic.substr(64) == v2.substr(64));
    // Pseudo-random body: barely compressible (every byte value appears, no long runs).
    CHECK(v1.find(std::string(16, '\0')) == std::string::npos);

    auto h = parse_sim_image_header(v2panic.substr(0, kMaxSimHeaderSize));
    REQUIRE(h);
    CHECK(h->version == 2);
    CHECK(h->health == SimHealth::Panic);
    CHECK_FALSE(parse_sim_image_header(std::string(100, '\0')));
    CHECK_FALSE(parse_sim_image_header("OTA-SIM-IMAGE version=x health=ok\n"));
    CHECK_FALSE(parse_sim_image_header("OTA-SIM-IMAGE version=1 health=great\n"));
    CHECK_FALSE(parse_sim_image_header("OTA-SIM-IMAGE version=1 health=ok"));
    CHECK_THROWS_AS(parse_sim_health("meh"), Error);
}

TEST_CASE("create: slot A holds the image, B is empty, the ECU has booted A once") {
    Ecu e;
    std::string a = ota::test::read_all(e.ecu.slot_device("A"));
    REQUIRE(a.size() == kSlotSize);
    CHECK(a.substr(0, kImageSize) == ota::test::read_all(e.dir.file("v1.img")));
    CHECK(a.find_first_not_of('\0', kImageSize) == std::string::npos);
    CHECK(ota::test::read_all(e.ecu.slot_device("B")) == std::string(kSlotSize, '\0'));
    CHECK(e.ecu.booted_slot() == "A");
    CHECK(e.ecu.boot_control()->booted_slot() == "A");
    BootState s = e.state();
    CHECK(s.order == std::vector<std::string>{"A", "B"});
    CHECK(s.tries_left == std::map<std::string, int>{{"A", 2}, {"B", 3}});
    std::string msg;
    CHECK(e.ecu.health_check(&msg));
    CHECK_FALSE(e.ecu.reboot_requested());
    // The environment is the real format: fw_printenv reads it through the generated config.
    std::string out;
    REQUIRE(ota::test::run_command("fw_printenv -c '" + e.ecu.env_config_path() + "'", &out) == 0);
    CHECK(out == "BOOT_A_LEFT=2\nBOOT_B_LEFT=3\nBOOT_ORDER=A B\n");
}

TEST_CASE("create refuses an image larger than the slot") {
    TempDir dir;
    ota::test::write_all_file(dir.file("big.img"), std::string(kSlotSize + 1, 'x'));
    CHECK_THROWS_AS(SimulatedEcu::create(dir.file("ecu"), kSlotSize, dir.file("big.img")), Error);
    CHECK_THROWS_AS(SimulatedEcu::open(dir.file("nothing")), Error);
}

TEST_CASE("good path: new slot boots, passes health, is marked good") {
    bool redundant = GENERATE(false, true);
    Ecu e(redundant);
    e.ecu.boot_control()->mark_good("A");
    install(e.ecu, "B", make_sim_image(2, SimHealth::Ok, kImageSize, 42));
    CHECK(e.ecu.reboot_requested());
    BootOutcome boot = e.ecu.power_on();
    CHECK(boot.slot == "B");
    CHECK(boot.healthy);
    CHECK(boot.power_ons == 1);
    CHECK_FALSE(e.ecu.reboot_requested());
    CHECK(e.ecu.boot_control()->booted_slot() == "B");
    CHECK(boot.state.order == std::vector<std::string>{"B", "A"});
    CHECK(boot.state.tries_left.at("B") == 2);
    CHECK(e.ecu.health_check(nullptr));
    e.ecu.boot_control()->mark_good("B");
    CHECK(e.state().tries_left.at("B") == 3);
    // It stays on B across further power-ons as long as it is marked good each time.
    for (int i = 0; i < 5; ++i) {
        CHECK(e.ecu.power_on().slot == "B");
        e.ecu.boot_control()->mark_good("B");
    }
}

TEST_CASE("failing health check: tries run out, the simulator falls back to the old slot") {
    Ecu e;
    e.ecu.boot_control()->mark_good("A");
    install(e.ecu, "B", make_sim_image(2, SimHealth::Fail, kImageSize, 42));
    for (int left = 2; left >= 0; --left) {
        BootOutcome boot = e.ecu.power_on();
        CHECK(boot.slot == "B");
        CHECK_FALSE(boot.healthy);
        CHECK(boot.state.tries_left.at("B") == left);
        std::string msg;
        CHECK_FALSE(e.ecu.health_check(&msg));
        CHECK_THAT(msg, Catch::Contains("health=fail"));
    }
    BootOutcome back = e.ecu.power_on();
    CHECK(back.slot == "A");
    CHECK(back.healthy);
    CHECK(back.state.order == std::vector<std::string>{"B", "A"});
    CHECK(back.state.tries_left.at("B") == 0);
    CHECK(back.state.tries_left.at("A") == 2);
}

TEST_CASE("panicking slot: one power-on resets until B's tries are gone, then boots A") {
    Ecu e;
    e.ecu.boot_control()->mark_good("A");
    install(e.ecu, "B", make_sim_image(2, SimHealth::Panic, kImageSize, 42));
    BootOutcome boot = e.ecu.power_on();
    CHECK(boot.slot == "A");
    CHECK(boot.power_ons == 4); // B three times (3 -> 0), then A
    CHECK(boot.state.tries_left.at("B") == 0);
    CHECK(boot.state.tries_left.at("A") == 2);
    CHECK(e.ecu.booted_slot() == "A");
}

TEST_CASE("a slot without a valid image header is a failed boot") {
    Ecu e;
    e.ecu.boot_control()->set_primary("B", 1); // B is all zeros
    BootOutcome boot = e.ecu.power_on();
    CHECK(boot.slot == "A");
    CHECK(boot.power_ons == 2);
}

TEST_CASE("all tries exhausted: the script restores the tries and resets") {
    Ecu e;
    SECTION("the boot script alone") {
        e.ecu.env()->write(
            {{"BOOT_ORDER", "B A"}, {"BOOT_A_LEFT", "0"}, {"BOOT_B_LEFT", "0"}, {"keep", "me"}});
        std::vector<std::string> log;
        CHECK(run_boot_script(*e.ecu.env(), {"A", "B"}, 3, &log) == "");
        EnvVars v = e.ecu.env()->read();
        CHECK(v.at("BOOT_A_LEFT") == "3");
        CHECK(v.at("BOOT_B_LEFT") == "3");
        CHECK(v.at("BOOT_ORDER") == "B A"); // order kept, as RAUC's script does
        CHECK(v.at("keep") == "me");
        CHECK(run_boot_script(*e.ecu.env(), {"A", "B"}, 3) == "B");
        CHECK(e.ecu.env()->read().at("BOOT_B_LEFT") == "2");
    }
    SECTION("through a power-on") {
        e.ecu.env()->write({{"BOOT_ORDER", "A"}, {"BOOT_A_LEFT", "0"}, {"BOOT_B_LEFT", "0"}});
        BootOutcome boot = e.ecu.power_on();
        CHECK(boot.slot == "A");
        CHECK(boot.power_ons == 2);
        CHECK(boot.state.tries_left.at("A") == 2);
        CHECK(boot.state.tries_left.at("B") == 3);
        CHECK(boot.state.order == std::vector<std::string>{"A"}); // B stays out
    }
    SECTION("missing variables get the script's defaults") {
        e.ecu.env()->write({});
        CHECK(run_boot_script(*e.ecu.env(), {"A", "B"}, 3) == "A");
        EnvVars v = e.ecu.env()->read();
        CHECK(v.at("BOOT_ORDER") == "A B");
        CHECK(v.at("BOOT_A_LEFT") == "2");
        CHECK(v.at("BOOT_B_LEFT") == "3");
    }
}

TEST_CASE("a slot marked bad is never booted, even when the good slot keeps failing") {
    Ecu e;
    auto bc = e.ecu.boot_control();
    bc->mark_bad("B");
    // B now holds a healthy image, but was never set primary (e.g. a power cut mid-install).
    ota::test::write_all_file(e.ecu.slot_device("B"),
                              make_sim_image(2, SimHealth::Ok, kImageSize, 42));
    ota::test::write_all_file(e.ecu.slot_device("A"),
                              make_sim_image(1, SimHealth::Panic, kImageSize, 42));
    try {
        e.ecu.power_on();
        FAIL("a board whose only bootable slot panics cannot come up");
    } catch (const Error& err) {
        CHECK(err.kind() == ErrorKind::State);
    }
    CHECK(e.ecu.booted_slot() == "");
    CHECK(e.state().order == std::vector<std::string>{"A"});
}

TEST_CASE("ota-sim: make-image, create, boot, health, state") {
    TempDir dir;
    const std::string sim = ota::test::built_program("ota-sim");
    std::string out;
    auto run = [&](const std::string& args) {
        int rc = ota::test::run_command(sim + " " + args, &out);
        INFO(args << "\n" << out);
        return rc;
    };
    REQUIRE(run("make-image --version 1 --size 65536 --seed 5 '" + dir.file("v1.img") + "'") == 0);
    CHECK(ota::test::read_all(dir.file("v1.img")) == make_sim_image(1, SimHealth::Ok, 65536, 5));
    REQUIRE(run("make-image --version 2 --health fail --size 65536 --seed 5 '" +
                dir.file("v2.img") + "'") == 0);
    CHECK(run("make-image --version 2 --health sick --size 65536 --seed 5 x") == 2);

    const std::string ecu = "--dir '" + dir.file("ecu") + "'";
    REQUIRE(run("create " + ecu + " --slot-size 131072 --image-a '" + dir.file("v1.img") +
                "' --redundant-env") == 0);
    CHECK(run("health " + ecu) == 0);

    // Install v2 (health=fail) into B with the real boot control, then boot through the CLI.
    SimulatedEcu handle = SimulatedEcu::open(dir.file("ecu"));
    handle.boot_control()->set_primary("B", 3);
    ota::test::write_all_file(handle.slot_device("B"), ota::test::read_all(dir.file("v2.img")));
    handle.rebooter()->reboot();

    REQUIRE(run("state " + ecu + " --json") == 0);
    auto before = nlohmann::json::parse(out);
    CHECK(before["reboot_requested"] == true);
    CHECK(before["slots"]["B"]["version"] == 2);

    REQUIRE(run("boot " + ecu) == 0);
    CHECK_THAT(out, Catch::Contains("booted slot B"));
    CHECK_THAT(out, Catch::Contains("BOOT_B_LEFT=2"));
    CHECK(run("health " + ecu) == 1);
    CHECK_THAT(out, Catch::Contains("health=fail"));

    REQUIRE(run("state " + ecu + " --json") == 0);
    auto after = nlohmann::json::parse(out);
    CHECK(after["booted_slot"] == "B");
    CHECK(after["boot_order"] == nlohmann::json::array({"B", "A"}));
    CHECK(after["tries_left"]["B"] == 2);
    CHECK(after["slots"]["A"]["version"] == 1);
    CHECK(after["slots"]["B"]["health"] == "fail");
    CHECK(after["reboot_requested"] == false);

    REQUIRE(run("state " + ecu) == 0);
    CHECK_THAT(out, Catch::Contains("booted slot: B"));
    CHECK(run("boot --dir '" + dir.file("missing") + "'") != 0);
    CHECK(run("frobnicate") == 2);
}
