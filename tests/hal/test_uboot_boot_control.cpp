// RAUC-convention boot control on the U-Boot environment.
#include "agent/common/error.h"
#include "hal/uboot_boot_control.h"
#include "hal_test_helpers.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::hal;
using ota::test::TempDir;

namespace {

struct Fixture {
    TempDir dir;
    std::shared_ptr<UBootEnv> env;
    explicit Fixture(bool redundant = true) {
        env = std::make_shared<UBootEnv>(
            load_fw_env_config(ota::test::write_env_config(dir, redundant)));
        env->initialize({{"BOOT_ORDER", "A B"},
                         {"BOOT_A_LEFT", "3"},
                         {"BOOT_B_LEFT", "3"},
                         {"bootcmd", "run rauc_boot"},
                         {"serial#", "ECU-0042"}});
    }
    UBootBootControl control(UBootBootControlOptions options = {}) {
        if (!options.booted_slot_provider) options.cmdline_path = dir.file("cmdline");
        return UBootBootControl(env, options);
    }
    // Total writes so far: the flags byte of the active copy counts them (redundant layout).
    int flags() { return env->inspect_copies()[size_t(env->active_copy())].flags; }
};

ErrorKind kind_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.kind();
    }
    FAIL("no ota::Error thrown");
    return ErrorKind::Io;
}

} // namespace

TEST_CASE("tries values: written as RAUC writes them (hex, no prefix), read with or without 0x") {
    CHECK(format_boot_tries(3) == "3");
    CHECK(format_boot_tries(0) == "0");
    CHECK(format_boot_tries(9) == "9");
    CHECK(parse_boot_tries("3") == 3);
    CHECK(parse_boot_tries("0x3") == 3);
    CHECK(parse_boot_tries("0XA") == 10);
    CHECK(parse_boot_tries("a") == 10);
    CHECK(kind_of([] { parse_boot_tries(""); }) == ErrorKind::Malformed);
    CHECK(kind_of([] { parse_boot_tries("0x"); }) == ErrorKind::Malformed);
    CHECK(kind_of([] { parse_boot_tries("three"); }) == ErrorKind::Malformed);
    CHECK(kind_of([] { parse_boot_tries("-1"); }) == ErrorKind::Malformed);
    // Eight hex digits that do not fit an int: an error, not an overflow (a fuzzed environment).
    CHECK(parse_boot_tries("7fffffff") == 0x7fffffff);
    CHECK(kind_of([] { parse_boot_tries("cBAEcBAE"); }) == ErrorKind::Malformed);
    CHECK(kind_of([] { parse_boot_tries("0x80000000"); }) == ErrorKind::Malformed);
    CHECK(kind_of([] { parse_boot_tries("ffffffff"); }) == ErrorKind::Malformed);
}

TEST_CASE("state() reads BOOT_ORDER and BOOT_x_LEFT, with the boot script's defaults") {
    Fixture f;
    auto bc = f.control();
    BootState s = bc.state();
    CHECK(s.order == std::vector<std::string>{"A", "B"});
    CHECK(s.tries_left == std::map<std::string, int>{{"A", 3}, {"B", 3}});

    f.env->write({{"BOOT_B_LEFT", "0x1"}});
    s = bc.state();
    CHECK(s.order == std::vector<std::string>{"A", "B"}); // missing -> "A B"
    CHECK(s.tries_left.at("A") == 3);                     // missing -> 3
    CHECK(s.tries_left.at("B") == 1);

    f.env->write({{"BOOT_A_LEFT", "lots"}});
    CHECK(kind_of([&] { bc.state(); }) == ErrorKind::Malformed);
}

TEST_CASE("mark_bad, set_primary, mark_good: one write each, other variables kept") {
    Fixture f;
    auto bc = f.control();
    int writes = f.flags();

    bc.mark_bad("B");
    CHECK(f.flags() == ++writes);
    EnvVars v = f.env->read();
    CHECK(v.at("BOOT_ORDER") == "A");
    CHECK(v.at("BOOT_B_LEFT") == "0");
    CHECK(v.at("BOOT_A_LEFT") == "3");

    bc.set_primary("B", 3);
    CHECK(f.flags() == ++writes);
    v = f.env->read();
    CHECK(v.at("BOOT_ORDER") == "B A");
    CHECK(v.at("BOOT_B_LEFT") == "3");

    // The boot script decrements on boot; mark_good restores the default tries, order unchanged.
    f.env->update([](EnvVars& e) { e["BOOT_B_LEFT"] = "2"; });
    ++writes;
    bc.mark_good("B");
    CHECK(f.flags() == ++writes);
    v = f.env->read();
    CHECK(v.at("BOOT_ORDER") == "B A");
    CHECK(v.at("BOOT_B_LEFT") == "3");

    // set_primary on a slot already first keeps the order; on the other slot moves it first.
    bc.set_primary("A", 2);
    v = f.env->read();
    CHECK(v.at("BOOT_ORDER") == "A B");
    CHECK(v.at("BOOT_A_LEFT") == "2");

    CHECK(v.at("bootcmd") == "run rauc_boot");
    CHECK(v.at("serial#") == "ECU-0042");
    CHECK(v.size() == 5);
}

TEST_CASE("mark_bad twice and set_primary on a slot missing from BOOT_ORDER") {
    Fixture f(false);
    auto bc = f.control();
    bc.mark_bad("A");
    bc.mark_bad("A");
    CHECK(f.env->read().at("BOOT_ORDER") == "B");
    bc.set_primary("A", 1);
    CHECK(f.env->read().at("BOOT_ORDER") == "A B");
    CHECK(bc.state().tries_left.at("A") == 1);
}

TEST_CASE("bad arguments are refused and change nothing") {
    Fixture f;
    auto bc = f.control();
    std::string before = ota::test::read_all(f.dir.file("uboot.env"));
    CHECK(kind_of([&] { bc.mark_bad("C"); }) == ErrorKind::Config);
    CHECK(kind_of([&] { bc.set_primary("B", 0); }) == ErrorKind::Config);
    CHECK(kind_of([&] { bc.set_primary("B", 10); }) == ErrorKind::Config);
    CHECK(kind_of([&] { bc.mark_good(""); }) == ErrorKind::Config);
    CHECK(ota::test::read_all(f.dir.file("uboot.env")) == before);
}

TEST_CASE("booted_slot() comes from rauc.slot= on the kernel command line or a provider") {
    Fixture f;
    auto bc = f.control();
    ota::test::write_all_file(f.dir.file("cmdline"),
                              "console=ttyAMA0 root=/dev/vda3 rauc.slot=B rootwait\n");
    CHECK(bc.booted_slot() == "B");
    ota::test::write_all_file(f.dir.file("cmdline"), "console=ttyAMA0 root=/dev/vda2\n");
    CHECK(kind_of([&] { bc.booted_slot(); }) == ErrorKind::State);
    ota::test::write_all_file(f.dir.file("cmdline"), "rauc.slot=Z\n");
    CHECK(kind_of([&] { bc.booted_slot(); }) == ErrorKind::Config);

    UBootBootControlOptions options;
    options.booted_slot_provider = [] { return std::string("A"); };
    CHECK(f.control(options).booted_slot() == "A");

    CHECK(rauc_slot_from_cmdline("a rauc.slot=A b") == "A");
    CHECK(rauc_slot_from_cmdline("xrauc.slot=A") == "");
    CHECK(rauc_slot_from_cmdline("") == "");
}

TEST_CASE("boot control on a corrupt environment reports Malformed and writes nothing") {
    Fixture f(false);
    auto bc = f.control();
    ota::test::patch_byte(f.dir.file("uboot.env"), 8, '!');
    std::string before = ota::test::read_all(f.dir.file("uboot.env"));
    CHECK(kind_of([&] { bc.mark_bad("B"); }) == ErrorKind::Malformed);
    CHECK(kind_of([&] { bc.state(); }) == ErrorKind::Malformed);
    CHECK(ota::test::read_all(f.dir.file("uboot.env")) == before);
}
