// Interoperability with Debian's libubootenv-tool (fw_printenv/fw_setenv), the tools an
// integrator and RAUC use on the same environment: each side must read what the other writes.
#include "hal/uboot_env.h"
#include "hal_test_helpers.h"

#include <catch2/catch.hpp>

using namespace ota::hal;
using ota::test::run_command;
using ota::test::TempDir;

namespace {

std::string printenv(const std::string& config, const std::string& args = "") {
    std::string out;
    int rc = run_command("fw_printenv -c '" + config + "' " + args, &out);
    INFO(out);
    REQUIRE(rc == 0);
    return out;
}

void setenv_tool(const std::string& config, const std::string& args) {
    std::string out;
    int rc = run_command("fw_setenv -c '" + config + "' " + args, &out);
    INFO(out);
    REQUIRE(rc == 0);
}

bool tools_installed() {
    return run_command("command -v fw_printenv fw_setenv") == 0;
}

} // namespace

TEST_CASE("fw_printenv reads the environment we write; we read what fw_setenv writes") {
    REQUIRE(tools_installed()); // libubootenv-tool is a test dependency
    bool redundant = GENERATE(false, true);
    INFO("redundant=" << redundant);
    TempDir dir;
    std::string config = ota::test::write_env_config(dir, redundant);
    UBootEnv env(load_fw_env_config(config));
    env.initialize({{"bootdelay", "2"}});
    env.write({{"BOOT_ORDER", "B A"},
               {"BOOT_A_LEFT", "0"},
               {"BOOT_B_LEFT", "3"},
               {"bootcmd", "run distro_bootcmd; echo done"}});

    // fw_printenv prints the variables in name order, one name=value per line.
    CHECK(printenv(config) == "BOOT_A_LEFT=0\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
                              "bootcmd=run distro_bootcmd; echo done\n");
    CHECK(printenv(config, "BOOT_ORDER") == "BOOT_ORDER=B A\n");
    CHECK(printenv(config, "-n BOOT_B_LEFT") == "3\n");

    int active_before = env.active_copy();
    setenv_tool(config, "BOOT_B_LEFT 2");
    setenv_tool(config, "from_tool 'hello world'");
    if (redundant) {
        // fw_setenv wrote the inactive copy, as we do; two writes = back to the same copy.
        CHECK(env.active_copy() == active_before);
        auto copies = env.inspect_copies();
        CHECK(copies[0].crc_ok);
        CHECK(copies[1].crc_ok);
    }
    EnvVars vars = env.read();
    CHECK(vars.at("BOOT_B_LEFT") == "2");
    CHECK(vars.at("from_tool") == "hello world");
    CHECK(vars.at("BOOT_ORDER") == "B A");
    CHECK(vars.at("bootcmd") == "run distro_bootcmd; echo done");

    // Deleting with fw_setenv NAME (no value).
    setenv_tool(config, "from_tool");
    CHECK(env.read().count("from_tool") == 0);

    // A script of NAME=value lines (fw_setenv -s), then our write on top, read back by the tool.
    ota::test::write_all_file(dir.file("script"), "BOOT_ORDER=A B\nBOOT_A_LEFT=3\n");
    setenv_tool(config, "-s '" + dir.file("script") + "'");
    CHECK(env.read().at("BOOT_ORDER") == "A B");
    CHECK(env.read().at("BOOT_A_LEFT") == "3");
    env.update([](EnvVars& v) { v["BOOT_A_LEFT"] = "1"; });
    CHECK(printenv(config, "BOOT_A_LEFT") == "BOOT_A_LEFT=1\n");
    CHECK(printenv(config, "BOOT_ORDER") == "BOOT_ORDER=A B\n");
}

TEST_CASE("with a corrupt newest copy, fw_printenv and we pick the same older copy") {
    REQUIRE(tools_installed());
    TempDir dir;
    std::string config = ota::test::write_env_config(dir, true);
    UBootEnv env(load_fw_env_config(config));
    env.initialize({{"v", "old"}});
    env.write({{"v", "new"}});
    REQUIRE(env.active_copy() == 1);
    CHECK(printenv(config, "v") == "v=new\n");
    ota::test::patch_byte(dir.file("uboot.env"), 0x4000 + 6, '#');
    CHECK(env.read().at("v") == "old");
    CHECK(printenv(config, "v") == "v=old\n");
}

TEST_CASE("fw_setenv across the flags wrap-around agrees with our choice of copy") {
    REQUIRE(tools_installed());
    TempDir dir;
    std::string config = ota::test::write_env_config(dir, true, 0x1000);
    ota::test::write_all_file(dir.file("uboot.env"),
                              encode_env_copy({{"v", "a"}}, 0x1000, uint8_t{0xFE}) +
                                  encode_env_copy({{"v", "b"}}, 0x1000, uint8_t{0xFF}));
    UBootEnv env(load_fw_env_config(config));
    setenv_tool(config, "v c"); // tool writes copy 0 with flags 0x00
    CHECK(env.inspect_copies()[0].flags == 0);
    CHECK(env.read().at("v") == "c");
    env.write({{"v", "d"}}); // we write copy 1 with flags 0x01
    CHECK(env.inspect_copies()[1].flags == 1);
    CHECK(printenv(config, "v") == "v=d\n");
}
