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

namespace {

// A file system tree: text files whose lines are all different, one of them edited in version 2.
void write_tree(const std::string& root, int version) {
    REQUIRE(run_command("mkdir -p " + root + "/etc " + root + "/usr/lib") == 0);
    for (int f = 0; f < 6; ++f) {
        std::string text;
        for (int n = 0; text.size() < 300000; ++n)
            text += "file " + std::to_string(f) + " record " + std::to_string(n) + " sum " +
                    std::to_string((n * 2654435761u + f) % 1000003) + "\n";
        if (version == 2 && f == 3)
            for (size_t i = 5000; i < text.size(); i += 20000)
                text[i] = '#';
        write_all_file(root + "/usr/lib/lib" + std::to_string(f) + ".so", text);
    }
    write_all_file(root + "/etc/version", "version " + std::to_string(version) + "\n");
}

} // namespace

TEST_CASE("a squashfs image with zstd blocks deltas through its blocks' contents, exactly") {
    TempDir dir;
    for (int v : {1, 2}) {
        write_tree(dir.file("tree" + std::to_string(v)), v);
        REQUIRE(run_command("mksquashfs " + dir.file("tree" + std::to_string(v)) + " " +
                            dir.file("v" + std::to_string(v)) +
                            " -noappend -no-progress -comp zstd -mkfs-time 1790000000 "
                            "-all-time 1790000000 >/dev/null") == 0);
    }
    auto publish = [&](const std::string& bundle, const std::string& options) {
        std::string out;
        REQUIRE(run_command(built_program("ota-publish") + " delta " + dir.file("v1") + " " +
                                dir.file("v2") + " " + dir.file(bundle) + options,
                            &out) == 0);
        std::string applied;
        REQUIRE(run_command(built_program("ota-agent") + " apply " + dir.file(bundle) +
                                " --source " + dir.file("v1") + " --output " + dir.file("out"),
                            &applied) == 0);
        REQUIRE(read_all(dir.file("out")) == read_all(dir.file("v2")));
        return read_all(dir.file(bundle)).size();
    };
    const size_t frames = publish("frames", "");
    const size_t plain = publish("plain", " --no-zstd-frames");
    const size_t old_agents = publish("format2", " --format 2");
    // The edited file's blocks all changed when compressed; decompressed, a byte every 20 KB.
    CHECK(frames * 4 < plain);
    CHECK(old_agents > frames * 4);
}
