// The model store on its own: staging a real model bundle into files, the atomic `current`
// switch, rollback, recovery of an interrupted activation, and refusal of bad input.
#include "agent/bundle/journal.h"
#include "agent/bundle/reader.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/delta/diff.h"
#include "agent/models/file_set_device.h"
#include "agent/models/model_store.h"
#include "models/fixture.h"

#include <catch2/catch.hpp>
#include <unistd.h>

using namespace ota;
using namespace ota::test;

namespace {

std::string link_target(const std::string& p) {
    char buf[64];
    ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
    return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

struct Staged {
    EcuFixture f;
    models::ModelStore store{f.store};

    void stage(const std::string& bundle_path, uint64_t version) {
        auto bf = bundle::BundleFile::open_self_verified(bundle_path);
        bundle::InstallJournal journal(f.tmp.file("journal.json"));
        bundle::InstallOptions o;
        o.apply_diff = ota::delta::apply_diff;
        store.stage("perception", version, bf, journal, o);
    }
};

} // namespace

TEST_CASE("a model bundle is staged into its files, then activated by one symlink switch") {
    Staged s;
    const std::string b1 = s.f.add_model("perception", 1);
    s.stage(b1, 1);
    // Staged: the files exist byte for byte, but nothing is active yet.
    CHECK(read_all(s.store.version_dir("perception", 1) + "/weights.bin") ==
          read_all(s.f.model_file("perception", 1, "weights.bin")));
    CHECK(read_all(s.store.version_dir("perception", 1) + "/labels/classes.txt") ==
          read_all(s.f.model_file("perception", 1, "labels/classes.txt")));
    CHECK_FALSE(s.store.current_version("perception"));
    CHECK_FALSE(file_exists(s.store.version_dir("perception", 1) + ".partial"));

    s.store.activate("perception", 1);
    CHECK(link_target(s.f.store + "/perception/current") == "1");
    CHECK(s.store.trial_version("perception") == 1u);
    s.store.commit("perception");
    CHECK_FALSE(s.store.trial_version("perception"));

    const std::string b2 = s.f.add_model("perception", 2);
    s.stage(b2, 2);
    s.store.activate("perception", 2);
    CHECK(read_all(s.f.current_file("perception", "config.json")) ==
          read_all(s.f.model_file("perception", 2, "config.json")));
    CHECK(s.store.previous_version("perception") == 1u);

    // Rollback: current is version 1 again, version 2's folder is gone.
    CHECK(s.store.rollback("perception") == 2u);
    CHECK(link_target(s.f.store + "/perception/current") == "1");
    CHECK(read_all(s.f.current_file("perception", "weights.bin")) ==
          read_all(s.f.model_file("perception", 1, "weights.bin")));
    CHECK_FALSE(file_exists(s.store.version_dir("perception", 2)));
}

TEST_CASE("a model delta is applied against the installed version's files") {
    Staged s;
    s.stage(s.f.add_model("perception", 1), 1);
    s.store.activate("perception", 1);
    s.store.commit("perception");
    s.f.make_model("perception", 2);
    const std::string delta = s.f.add_model_delta("perception", 1, 2);
    CHECK(file_size(delta) < 100 * 1024); // far below the 300 KiB of weights
    s.stage(delta, 2);
    CHECK(read_all(s.store.version_dir("perception", 2) + "/weights.bin") ==
          read_all(s.f.model_file("perception", 2, "weights.bin")));
}

TEST_CASE("an activation interrupted before its commit is rolled back at start-up") {
    Staged s;
    s.stage(s.f.add_model("perception", 1), 1);
    s.store.activate("perception", 1);
    s.store.commit("perception");
    s.stage(s.f.add_model("perception", 2), 2);
    s.store.activate("perception", 2); // power cut here: the health check never finished
    models::ModelStore after_restart(s.f.store);
    CHECK(after_restart.recover() == std::vector<std::string>{"perception"});
    CHECK(after_restart.current_version("perception") == 1u);
    CHECK_FALSE(after_restart.trial_version("perception"));
}

TEST_CASE("a corrupt model bundle changes nothing in the store") {
    Staged s;
    s.stage(s.f.add_model("perception", 1), 1);
    s.store.activate("perception", 1);
    s.store.commit("perception");
    const std::string b2 = s.f.add_model("perception", 2);
    std::string bytes = read_all(b2);
    bytes[bytes.size() - 100] ^= 0x40; // inside the last blob
    write_all_file(b2, bytes);
    CHECK_THROWS_AS(s.stage(b2, 2), Error);
    CHECK_FALSE(s.store.is_staged("perception", 2));
    CHECK(s.store.current_version("perception") == 1u);
    CHECK(read_all(s.f.current_file("perception", "weights.bin")) ==
          read_all(s.f.model_file("perception", 1, "weights.bin")));
}

TEST_CASE("model file layouts with unsafe paths or gaps are refused") {
    using bundle::FileEntry;
    CHECK_THROWS_AS(models::check_file_layout({FileEntry{"../etc/passwd", 0, 10, 0644}}, 10),
                    Error);
    CHECK_THROWS_AS(models::check_file_layout({FileEntry{"/abs", 0, 10, 0644}}, 10), Error);
    CHECK_THROWS_AS(models::check_file_layout({FileEntry{"a//b", 0, 10, 0644}}, 10), Error);
    CHECK_THROWS_AS(
        models::check_file_layout({FileEntry{"a", 0, 4, 0644}, FileEntry{"b", 5, 5, 0644}}, 10),
        Error);
    CHECK_THROWS_AS(models::check_file_layout({FileEntry{"a", 0, 4, 0644}}, 10), Error);
    CHECK_THROWS_AS(
        models::check_file_layout({FileEntry{"a", 0, 4, 0644}, FileEntry{"a/b", 4, 6, 0644}}, 10),
        Error);
    CHECK_THROWS_AS(models::check_file_layout({FileEntry{"a", 0, 10, 04755}}, 10), Error);
    CHECK_NOTHROW(
        models::check_file_layout({FileEntry{"a", 0, 4, 0644}, FileEntry{"d/b", 4, 6, 0755}}, 10));
    CHECK_THROWS_AS(models::check_model_name("../x"), Error);
    CHECK_THROWS_AS(models::check_model_name(".hidden"), Error);
}
