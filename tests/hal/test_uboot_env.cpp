// The U-Boot environment codec and storage: layout, CRC, corrupt input, the redundant layout.
#include "agent/common/error.h"
#include "hal/uboot_env.h"
#include "hal_test_helpers.h"

#include <catch2/catch.hpp>
#include <zlib.h>

using namespace ota;
using namespace ota::hal;
using ota::test::TempDir;

namespace {

uint32_t le32(const std::string& s, size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
        v |= uint32_t(uint8_t(s[at + i])) << (8 * i);
    return v;
}

uint32_t zlib_crc(const std::string& s, size_t from) {
    return uint32_t(
        ::crc32(0, reinterpret_cast<const Bytef*>(s.data() + from), uInt(s.size() - from)));
}

ErrorKind kind_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.kind();
    }
    FAIL("no ota::Error thrown");
    return ErrorKind::Io;
}

const EnvVars kSample{{"BOOT_ORDER", "A B"},
                      {"BOOT_A_LEFT", "3"},
                      {"bootcmd", "run distro_bootcmd; echo a=b"},
                      {"empty", ""},
                      {"multi", "line1\nline2"}};

} // namespace

TEST_CASE("single-copy layout: CRC-32 LE, sorted name=value entries, end marker, zero padding") {
    std::string image = encode_env_copy({{"b", "2"}, {"a", "1"}}, 64, std::nullopt);
    REQUIRE(image.size() == 64);
    CHECK(le32(image, 0) == zlib_crc(image, 4));
    CHECK(image.substr(4, 9) == std::string("a=1\0b=2\0\0", 9));
    CHECK(image.find_first_not_of('\0', 13) == std::string::npos);
}

TEST_CASE("redundant layout: CRC-32 over the data after the flags byte") {
    std::string image = encode_env_copy({{"x", "y"}}, 64, uint8_t{7});
    CHECK(uint8_t(image[4]) == 7);
    CHECK(le32(image, 0) == zlib_crc(image, 5));
    CHECK(image.substr(5, 5) == std::string("x=y\0\0", 5));
}

TEST_CASE("environment round trip through a file, single copy") {
    TempDir dir;
    UBootEnv env(load_fw_env_config(ota::test::write_env_config(dir, false)));
    env.write(kSample);
    CHECK(env.read() == kSample);
    env.update([](EnvVars& v) { v["added"] = "yes"; });
    EnvVars expected = kSample;
    expected["added"] = "yes";
    CHECK(env.read() == expected);
}

TEST_CASE("a flipped byte fails the CRC check and is rejected") {
    TempDir dir;
    std::string config = ota::test::write_env_config(dir, false);
    UBootEnv env(load_fw_env_config(config));
    env.write(kSample);
    ota::test::patch_byte(dir.file("uboot.env"), 10, 'Z');
    CHECK_FALSE(env.inspect_copies()[0].crc_ok);
    CHECK(kind_of([&] { env.read(); }) == ErrorKind::Malformed);
    CHECK_THROWS_WITH(env.read(), Catch::Contains("bad CRC"));
    // An update needs a readable environment and must not write anything.
    std::string before = ota::test::read_all(dir.file("uboot.env"));
    CHECK(kind_of([&] { env.update([](EnvVars& v) { v["x"] = "1"; }); }) == ErrorKind::Malformed);
    CHECK(ota::test::read_all(dir.file("uboot.env")) == before);
}

TEST_CASE("entries with a valid CRC but a broken structure are rejected") {
    auto with_crc = [](std::string data) {
        data.resize(60, '\0');
        return data;
    };
    SECTION("no end marker") {
        CHECK(kind_of([&] { decode_env_entries(std::string(60, 'a')); }) == ErrorKind::Malformed);
        std::string full = "a=1";
        full += '\0';
        CHECK(kind_of([&] { decode_env_entries(full); }) == ErrorKind::Malformed);
    }
    SECTION("entry without '='") {
        CHECK(kind_of([&] { decode_env_entries(with_crc(std::string("novalue\0", 8))); }) ==
              ErrorKind::Malformed);
    }
    SECTION("entry with an empty name") {
        CHECK(kind_of([&] { decode_env_entries(with_crc(std::string("=x\0", 3))); }) ==
              ErrorKind::Malformed);
    }
    SECTION("an empty environment is valid") {
        CHECK(decode_env_entries(with_crc("")).empty());
    }
    SECTION("duplicates: the later entry wins, as U-Boot imports") {
        CHECK(decode_env_entries(with_crc(std::string("a=1\0a=2\0", 8))).at("a") == "2");
    }
}

TEST_CASE("bad names, NUL values and oversized environments change nothing") {
    TempDir dir;
    UBootEnv env(load_fw_env_config(ota::test::write_env_config(dir, false, 0x100)));
    env.write(kSample);
    std::string before = ota::test::read_all(dir.file("uboot.env"));
    CHECK(kind_of([&] { env.write({{"a=b", "1"}}); }) == ErrorKind::Malformed);
    CHECK(kind_of([&] { env.write({{"", "1"}}); }) == ErrorKind::Malformed);
    CHECK(kind_of([&] { env.write({{std::string("a\0b", 3), "1"}}); }) == ErrorKind::Malformed);
    CHECK(kind_of([&] { env.write({{"a", std::string("x\0y", 3)}}); }) == ErrorKind::Malformed);
    CHECK(kind_of([&] { env.write({{"big", std::string(0x100, 'x')}}); }) == ErrorKind::TooLarge);
    CHECK(ota::test::read_all(dir.file("uboot.env")) == before);
}

TEST_CASE("fw_env.config parsing follows libubootenv's rules") {
    SECTION("single copy, comments, blank lines") {
        EnvConfig c = parse_fw_env_config("# comment\n\n/dev/mmcblk0 0x3f0000 0x10000 0x10000 2\n");
        REQUIRE(c.copies.size() == 1);
        CHECK_FALSE(c.redundant());
        CHECK(c.copies[0].device == "/dev/mmcblk0");
        CHECK(c.copies[0].offset == 0x3f0000);
        CHECK(c.copies[0].size == 0x10000);
        CHECK(c.copies[0].sector_size == 0x10000);
        CHECK(c.copies[0].sectors == 2);
    }
    SECTION("two lines = redundant; sizes are hex even without 0x; decimal offsets") {
        EnvConfig c = parse_fw_env_config("/dev/vda4 0 4000  # first\n/dev/vda4 16384 4000\n");
        REQUIRE(c.redundant());
        CHECK(c.env_size() == 0x4000);
        CHECK(c.copies[1].offset == 16384);
    }
    SECTION("negative offsets count from the end") {
        CHECK(parse_fw_env_config("/dev/sda -0x4000 0x4000").copies[0].offset == -0x4000);
    }
    SECTION("format and parse again") {
        EnvConfig c = parse_fw_env_config("/x/env 0x0 0x2000\n/x/env 0x2000 0x2000\n");
        EnvConfig again = parse_fw_env_config(format_fw_env_config(c));
        CHECK(again.copies.size() == 2);
        CHECK(again.copies[1].offset == 0x2000);
    }
    SECTION("errors") {
        auto kind = [](const std::string& text) {
            return kind_of([&] { parse_fw_env_config(text); });
        };
        CHECK(kind("") == ErrorKind::Config);
        CHECK(kind("# only comments\n") == ErrorKind::Config);
        CHECK(kind("/dev/x 0x0\n") == ErrorKind::Config);
        CHECK(kind("/dev/x zero 0x4000\n") == ErrorKind::Config);
        CHECK(kind("/dev/x 0 0\n") == ErrorKind::Config);
        CHECK(kind("/dev/x 0 0x200000\n") == ErrorKind::Config); // above 1 MiB
        CHECK(kind("/dev/x 0 0x4000\n/dev/x 0x4000 0x2000\n") == ErrorKind::Config);
        CHECK(kind("/a 0 0x4000\n/b 0 0x4000\n/c 0 0x4000\n") == ErrorKind::Config);
        CHECK(kind("/dev/mtd0 0 0x4000\n") == ErrorKind::Unsupported);
        CHECK(kind("/dev/x -0x8000000000000000 0x4000\n") == ErrorKind::Config);
        CHECK_THROWS_WITH(parse_fw_env_config("/dev/x 0 0\n"), Catch::Contains("line 1"));
    }
}

TEST_CASE("a negative offset addresses the end of the device") {
    TempDir dir;
    ota::test::write_all_file(dir.file("env"), std::string(0x3000, '\0'));
    ota::test::write_all_file(dir.file("cfg"), dir.file("env") + " -0x1000 0x1000\n");
    UBootEnv env(load_fw_env_config(dir.file("cfg")));
    env.write({{"k", "v"}});
    std::string raw = ota::test::read_all(dir.file("env"));
    CHECK(raw.substr(0x2004, 4) == std::string("k=v\0", 4));
    CHECK(env.read().at("k") == "v");
}

TEST_CASE("active copy selection follows libubootenv's incremental flags") {
    EnvCopy a, b;
    a.crc_ok = b.crc_ok = true;
    a.flags = 1;
    b.flags = 2;
    CHECK(select_active_copy(a, b) == 1);
    b.flags = 0;
    CHECK(select_active_copy(a, b) == 0);
    a.flags = 0xFF;
    CHECK(select_active_copy(a, b) == 1); // 0 after 0xFF is newer
    a.flags = 0;
    b.flags = 0xFF;
    CHECK(select_active_copy(a, b) == 0);
    b.flags = 0;
    CHECK(select_active_copy(a, b) == 0); // tie: copy 0
    a.crc_ok = false;
    CHECK(select_active_copy(a, b) == 1);
    a.crc_ok = true;
    b.crc_ok = false;
    b.flags = 9;
    CHECK(select_active_copy(a, b) == 0);
    a.crc_ok = false;
    CHECK(kind_of([&] { select_active_copy(a, b); }) == ErrorKind::Malformed);
}

TEST_CASE("redundant environment: writes alternate copies with incrementing flags") {
    TempDir dir;
    UBootEnv env(load_fw_env_config(ota::test::write_env_config(dir, true)));
    env.initialize({{"gen", "0"}});
    CHECK(env.active_copy() == 0);
    auto copies = env.inspect_copies();
    CHECK(copies[0].flags == 1);
    CHECK(copies[1].flags == 0);
    int expected_active = 0;
    uint8_t expected_flags = 1;
    for (int gen = 1; gen <= 5; ++gen) {
        std::string before_active =
            ota::test::read_all(dir.file("uboot.env")).substr(expected_active * 0x4000, 0x4000);
        env.write({{"gen", std::to_string(gen)}});
        std::string raw = ota::test::read_all(dir.file("uboot.env"));
        // The previously active copy is untouched: a power cut during the write loses nothing.
        CHECK(raw.substr(expected_active * 0x4000, 0x4000) == before_active);
        expected_active = 1 - expected_active;
        ++expected_flags;
        CHECK(env.active_copy() == expected_active);
        CHECK(env.inspect_copies()[expected_active].flags == expected_flags);
        CHECK(env.read().at("gen") == std::to_string(gen));
    }
}

TEST_CASE("redundant environment: flags wrap from 0xFF to 0") {
    TempDir dir;
    std::string config = ota::test::write_env_config(dir, true, 0x100);
    std::string image = encode_env_copy({{"v", "old"}}, 0x100, uint8_t{0xFE}) +
                        encode_env_copy({{"v", "new"}}, 0x100, uint8_t{0xFF});
    ota::test::write_all_file(dir.file("uboot.env"), image);
    UBootEnv env(load_fw_env_config(config));
    CHECK(env.read().at("v") == "new");
    env.write({{"v", "wrapped"}});
    CHECK(env.inspect_copies()[0].flags == 0);
    CHECK(env.active_copy() == 0);
    CHECK(env.read().at("v") == "wrapped");
}

TEST_CASE("redundant environment: one corrupt copy -> the other is used; both -> error") {
    TempDir dir;
    UBootEnv env(load_fw_env_config(ota::test::write_env_config(dir, true)));
    env.initialize({{"v", "1"}});
    env.write({{"v", "2"}}); // copy 1 active now, copy 0 holds v=1
    REQUIRE(env.active_copy() == 1);

    SECTION("newest copy corrupt: fall back to the older one, next write repairs it") {
        ota::test::patch_byte(dir.file("uboot.env"), 0x4000 + 7, 'X');
        CHECK(env.active_copy() == 0);
        CHECK(env.read().at("v") == "1");
        env.write({{"v", "3"}}); // goes to the corrupt copy 1
        auto copies = env.inspect_copies();
        CHECK(copies[1].crc_ok);
        CHECK(copies[1].flags == 2); // copy 0's flags (1) + 1
        CHECK(env.read().at("v") == "3");
    }
    SECTION("older copy corrupt: the newest is still used") {
        ota::test::patch_byte(dir.file("uboot.env"), 7, 'X');
        CHECK(env.read().at("v") == "2");
    }
    SECTION("both corrupt: read and write fail, nothing written") {
        ota::test::patch_byte(dir.file("uboot.env"), 7, 'X');
        ota::test::patch_byte(dir.file("uboot.env"), 0x4000 + 7, 'X');
        std::string before = ota::test::read_all(dir.file("uboot.env"));
        CHECK(kind_of([&] { env.read(); }) == ErrorKind::Malformed);
        CHECK_THROWS_WITH(env.read(), Catch::Contains("both copies"));
        CHECK(kind_of([&] { env.write({{"v", "4"}}); }) == ErrorKind::Malformed);
        CHECK(ota::test::read_all(dir.file("uboot.env")) == before);
        // Explicit re-provisioning recovers.
        env.initialize({{"v", "fresh"}});
        CHECK(env.read().at("v") == "fresh");
    }
}

TEST_CASE("a missing or short environment device is an I/O error") {
    TempDir dir;
    ota::test::write_all_file(dir.file("cfg"), dir.file("absent") + " 0 0x1000\n");
    UBootEnv env(load_fw_env_config(dir.file("cfg")));
    CHECK(kind_of([&] { env.read(); }) == ErrorKind::Io);
    ota::test::write_all_file(dir.file("absent"), std::string(0x800, '\0'));
    CHECK(kind_of([&] { env.read(); }) == ErrorKind::Io);
}
