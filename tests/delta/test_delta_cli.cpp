// The offline commands integrators and the benchmark use, as programs:
// `ota-publish delta OLD NEW BUNDLE` and `ota-agent apply BUNDLE --source OLD --output OUT`.
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota::test;

namespace {

struct DeltaCliFixture {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(300000, 71);
    std::string new_image;
    DeltaCliFixture() {
        new_image = old_image;
        new_image.insert(120000, pseudo_random_bytes(3000, 72));
        for (size_t i = 0; i < new_image.size(); i += 4096)
            new_image[i] = char(new_image[i] + 1);
        write_all_file(dir.file("old"), old_image);
        write_all_file(dir.file("new"), new_image);
        std::string out;
        REQUIRE(run_command(built_program("ota-publish") + " delta " + dir.file("old") + " " +
                                dir.file("new") + " " + dir.file("bundle"),
                            &out) == 0);
    }
    int apply(const std::string& source, std::string* output, const std::string& env = "") {
        return run_command(env + built_program("ota-agent") + " apply " + dir.file("bundle") +
                               " --source " + source + " --output " + dir.file("out"),
                           output);
    }
};

} // namespace

TEST_CASE("ota-agent apply rebuilds the new image from ota-publish delta's bundle") {
    DeltaCliFixture f;
    REQUIRE(read_all(f.dir.file("bundle")).size() < f.new_image.size() / 4);
    std::string out;
    // LD_DEBUG=files lists every library the dynamic loader opens: an offline apply must not
    // load libcurl (and its thirty dependencies), which the agent loads only to download.
    REQUIRE(f.apply(f.dir.file("old"), &out, "LD_DEBUG=files ") == 0);
    CHECK(read_all(f.dir.file("out")) == f.new_image);
    CHECK(out.find("libmbedcrypto") != std::string::npos); // LD_DEBUG did report the loads
    CHECK(out.find("libcurl") == std::string::npos);
}

TEST_CASE("ota-agent apply exits 1 on a source that is not the delta's old image") {
    DeltaCliFixture f;
    std::string changed = f.old_image;
    changed[150000] ^= 0x20;
    write_all_file(f.dir.file("other"), changed);
    std::string out;
    CHECK(f.apply(f.dir.file("other"), &out) == 1);
    CHECK_THAT(out, Catch::Contains("source"));
    CHECK(read_all(f.dir.file("out")) != f.new_image);
}

TEST_CASE("ota-agent apply exits 1 on a bundle altered after publishing") {
    DeltaCliFixture f;
    std::string bundle = read_all(f.dir.file("bundle"));
    bundle[bundle.size() - 10] ^= 0x01; // inside the last data blob
    write_all_file(f.dir.file("bundle"), bundle);
    std::string out;
    CHECK(f.apply(f.dir.file("old"), &out) == 1);
    CHECK(read_all(f.dir.file("out")) != f.new_image);
}
