// Model updates and multi-component releases through the real ota-agent program: signed
// repository on disk, simulated ECU, model store, health-check hooks.
#include "agent/common/fs.h"
#include "models/fixture.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;

namespace {

void flip_byte(const std::string& path, size_t from_end) {
    std::string bytes = read_all(path);
    bytes[bytes.size() - from_end] ^= 0x01;
    write_all_file(path, bytes);
}

// perception 1 and voice 1 installed and committed, firmware 1 running from slot A.
void install_v1_models(EcuFixture& f) {
    f.add_model("perception", 1);
    f.add_model("voice", 1);
    std::string out;
    INFO(out);
    REQUIRE(f.agent("update", &out) == 0);
    REQUIRE(read_all(f.current_file("perception", "weights.bin")) ==
            read_all(f.model_file("perception", 1, "weights.bin")));
    REQUIRE(read_all(f.current_file("voice", "config.json")) ==
            read_all(f.model_file("voice", 1, "config.json")));
}

void require_v1_everywhere(EcuFixture& f) {
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 1, "weights.bin")));
    CHECK(read_all(f.current_file("voice", "config.json")) ==
          read_all(f.model_file("voice", 1, "config.json")));
    CHECK_FALSE(file_exists(f.store + "/perception/trial"));
    CHECK_FALSE(file_exists(f.store + "/voice/trial"));
    CHECK(f.boot_order().rfind("A", 0) == 0); // the new firmware slot was never switched to
    Json st = f.agent_state();
    CHECK((st["pending"].is_null() || st["pending"]["stage"] == "installing"));
    CHECK(st["release"].is_null());
}

} // namespace

TEST_CASE("a model update installs and commits without a reboot") {
    EcuFixture f;
    install_v1_models(f);
    f.add_model("perception", 2);
    std::string out;
    REQUIRE(f.agent("update", &out) == 0);
    INFO(out);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 2, "weights.bin")));
    CHECK(out.find("committed") != std::string::npos);
    CHECK_FALSE(file_exists(f.sim + "/reboot-requested"));
    Json st = f.agent_state();
    CHECK(st["installed"]["perception"]["version"] == 2);
    CHECK(st["last_result"]["outcome"] == "committed");
    // The previous version stays for rollback; `rollback perception` goes back to it.
    REQUIRE(f.agent("rollback perception", &out) == 0);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 1, "weights.bin")));
    // ...and version 2 is not installed again by the next update.
    REQUIRE(f.agent("update", &out) == 0);
    CHECK(read_all(f.current_file("perception", "config.json")) ==
          read_all(f.model_file("perception", 1, "config.json")));
}

TEST_CASE("a model delta against the installed model is chosen and applied") {
    EcuFixture f;
    install_v1_models(f);
    f.add_model("perception", 2);
    f.add_model_delta("perception", 1, 2);
    std::string out;
    REQUIRE(f.agent("update", &out) == 0);
    INFO(out);
    CHECK(out.find("from-1.delta") != std::string::npos);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 2, "weights.bin")));
}

TEST_CASE("a model whose health check fails is rolled back to the previous version") {
    EcuFixture f;
    install_v1_models(f);
    f.add_model("perception", 2, "broken");
    std::string out;
    CHECK(f.agent("update", &out) == 1);
    INFO(out);
    CHECK(out.find("failed its health check") != std::string::npos);
    CHECK(read_all(f.current_file("perception", "config.json")) ==
          read_all(f.model_file("perception", 1, "config.json")));
    CHECK_FALSE(file_exists(f.store + "/perception/2"));
    Json st = f.agent_state();
    CHECK(st["last_result"]["outcome"] == "rolled-back");
    CHECK(st["failed_versions"]["perception"] == Json::array({2}));
    // Not retried: the next update is up to date.
    REQUIRE(f.agent("update", &out) == 0);
    CHECK(f.agent_state()["last_result"]["outcome"] == "up-to-date");
}

TEST_CASE("a release installs firmware and models together and commits them with the boot") {
    EcuFixture f;
    install_v1_models(f);
    f.add_firmware(2);
    f.add_model("perception", 2);
    f.add_model("voice", 2);
    f.add_release("2026.11", 1, {"rootfs:2", "perception:2", "voice:2"});
    std::string out;
    REQUIRE(f.agent("update", &out) == 0);
    INFO(out);
    CHECK(out.find("release 2026.11") != std::string::npos);
    CHECK(f.boot_order() == "B A");
    CHECK(file_exists(f.store + "/voice/trial")); // committed only with the firmware
    REQUIRE(f.power_on() == "B");
    REQUIRE(f.agent("boot-check", &out) == 0);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 2, "weights.bin")));
    CHECK(read_all(f.current_file("voice", "config.json")) ==
          read_all(f.model_file("voice", 2, "config.json")));
    CHECK_FALSE(file_exists(f.store + "/voice/trial"));
    Json st = f.agent_state();
    CHECK(st["release"]["id"] == "2026.11");
    CHECK(st["installed"]["rootfs"]["version"] == 2);
    CHECK(st["installed"]["voice"]["version"] == 2);
    REQUIRE(f.agent("status --json", &out) == 0);
    CHECK(out.find("\"2026.11\"") != std::string::npos);
}

TEST_CASE("a release is all-or-nothing: a failure in any component activates none") {
    EcuFixture f;
    install_v1_models(f);
    f.add_firmware(2);
    f.add_model("perception", 2);
    std::string out;

    SECTION("the firmware bundle is corrupt") {
        f.add_model("voice", 2);
        f.add_release("r2", 1, {"rootfs:2", "perception:2", "voice:2"});
        flip_byte(f.target_file("demo-ecu/rootfs-2.full.bundle"), 10);
        CHECK(f.agent("update", &out) == 1);
        INFO(out);
        require_v1_everywhere(f);
    }
    SECTION("a model bundle is corrupt") {
        f.add_model("voice", 2);
        f.add_release("r2", 1, {"rootfs:2", "perception:2", "voice:2"});
        flip_byte(f.target_file("demo-ecu/voice-2.full.bundle"), 10);
        CHECK(f.agent("update", &out) == 1);
        INFO(out);
        require_v1_everywhere(f);
    }
    SECTION("the second model fails its health check: the first is rolled back too") {
        f.add_model("voice", 2, "broken");
        f.add_release("r2", 1, {"rootfs:2", "perception:2", "voice:2"});
        CHECK(f.agent("update", &out) == 1);
        INFO(out);
        CHECK(out.find("release r2 rolled back") != std::string::npos);
        require_v1_everywhere(f);
        CHECK(f.agent_state()["failed_versions"]["release"] == Json::array({1}));
        CHECK_FALSE(file_exists(f.sim + "/reboot-requested"));
    }
    SECTION("the new firmware never boots: the bootloader falls back and the models follow") {
        f.add_firmware(3, "panic");
        f.add_model("voice", 2);
        f.add_release("r3", 1, {"rootfs:3", "perception:2", "voice:2"});
        REQUIRE(f.agent("update", &out) == 0);
        INFO(out);
        CHECK(f.boot_order() == "B A");
        CHECK(f.power_on() == "A"); // B panics until its tries run out
        REQUIRE(f.agent("boot-check", &out) == 0);
        CHECK(out.find("ROLLBACK") != std::string::npos);
        require_v1_everywhere(f);
        CHECK(f.agent_state()["last_result"]["outcome"] == "rolled-back");
    }
}

TEST_CASE("install FILE accepts only bundles that are signed targets") {
    EcuFixture f;
    f.add_model("perception", 1);
    std::string out;
    // Built by the same tool, but never listed in the signed metadata.
    f.make_model("perception", 5);
    const std::string unsigned_bundle = f.tmp.file("unsigned.bundle");
    f.publish("model-bundle --dir " + f.tmp.file("src-perception-5") + " --out " + unsigned_bundle);
    CHECK(f.agent("install " + unsigned_bundle, &out) == 1);
    CHECK(out.find("refusing to install unsigned code") != std::string::npos);
    CHECK_FALSE(file_exists(f.store + "/perception/current"));

    REQUIRE(f.agent("install " + f.tmp.file("perception-1.bundle"), &out) == 0);
    INFO(out);
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 1, "weights.bin")));
    // The same bundle again is not newer than the installed version.
    CHECK(f.agent("install " + f.tmp.file("perception-1.bundle"), &out) == 1);
    CHECK(out.find("not above the installed") != std::string::npos);
}
