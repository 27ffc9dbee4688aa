// Real power loss, not only process death: the ECU's folders are served by ota-test-lossfs, which
// loses at a cut whatever was not synced. First the harness proves it tells durable writes from
// writes that only reached the page cache; then the power-cut soak runs over it.
#include "agent/common/fs.h"
#include "robust/power_loss_disk.h"
#include "robust/power_soak.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>

using namespace ota;
using namespace ota::test;

namespace {

std::string probe(const std::string& mode, const std::string& file, const std::string& text) {
    std::string out;
    const int rc = run_command(
        built_program("lossfs-probe") + " " + mode + " '" + file + "' '" + text + "' 2>&1", &out);
    INFO(out);
    REQUIRE(rc == 0);
    return read_all(file);
}

std::string contents_or_absent(const std::string& path) {
    return file_exists(path) ? read_all(path) : "(absent)";
}

// The ECU's storage (its slots and boot environment, and the agent's state folder) on disks that
// lose what was not synced. Every other cut drops everything unsynced; the others keep a random
// part of it (a cut during writeback).
class LossyStorage : public SoakStorage {
public:
    void attach(slice::Slice& s) override {
        ecu_ = std::make_unique<PowerLossDisk>(s.ecu_dir());
        state_ = std::make_unique<PowerLossDisk>(s.state_dir());
    }
    void detach() override {
        ecu_.reset();
        state_.reset();
    }
    void cut(std::mt19937_64& rng) override {
        const bool torn = rng() & 1;
        const uint64_t seed = rng();
        for (PowerLossDisk* disk : {ecu_.get(), state_.get()})
            disk->cut(torn ? PowerLossDisk::Cut::Torn : PowerLossDisk::Cut::Drop, seed);
        (torn ? torn_cuts : drop_cuts)++;
        for (PowerLossDisk* disk : {ecu_.get(), state_.get()})
            disk->power_on();
    }
    int drop_cuts = 0, torn_cuts = 0;

private:
    std::unique_ptr<PowerLossDisk> ecu_, state_;
};

} // namespace

TEST_CASE("power loss: the harness keeps synced writes and loses the others", "[robust][power]") {
    TempDir tmp;
    const std::string dir = tmp.file("disk");
    make_directories(dir);
    write_all_file(dir + "/state", "old");
    PowerLossDisk disk(dir);
    const std::string file = dir + "/state";

    struct Case {
        const char* mode;
        std::string after_cut; // what the file holds when power comes back
    };
    const Case cases[] = {
        {"atomic", "new"},             // write, fsync, rename, fsync the folder: kept
        {"rename-unsynced", ""},       // the new name survived, its data did not
        {"no-dir-fsync", "old"},       // the rename itself was lost
        {"overwrite-unsynced", "old"}, // never synced
    };
    for (const auto& c : cases) {
        INFO(c.mode);
        // Before the cut every program sees the new contents, which is all that killing the
        // writer (SIGKILL) could ever show.
        CHECK(probe(c.mode, file, "new") == "new");
        disk.cut(PowerLossDisk::Cut::Drop);
        disk.power_on();
        CHECK(contents_or_absent(file) == c.after_cut);
        CHECK_FALSE(file_exists(file + ".new"));
        if (contents_or_absent(file) != "old") write_file_atomic(file, "old");
    }

    // A new folder's name is durable only once its parent is synced.
    CHECK(probe("mkdir-unsynced", dir + "/sub", "x") == "");
    CHECK(read_all(dir + "/sub/file") == "x");
    disk.cut(PowerLossDisk::Cut::Drop);
    disk.power_on();
    CHECK_FALSE(file_exists(dir + "/sub"));

    // The agent's own primitive survives, whatever the cut.
    write_file_atomic(file, "written by write_file_atomic");
    disk.cut(PowerLossDisk::Cut::Torn, 7);
    disk.power_on();
    CHECK(read_all(file) == "written by write_file_atomic");
}

TEST_CASE("power loss: a torn cut keeps any subset of the unsynced blocks", "[robust][power]") {
    TempDir tmp;
    const std::string dir = tmp.file("disk");
    make_directories(dir);
    const std::string old_data(64 * 1024, 'o'), new_data(64 * 1024, 'n');
    write_all_file(dir + "/image", old_data);
    PowerLossDisk disk(dir);
    bool saw_old = false, saw_new = false, saw_mixed = false;
    for (uint64_t seed = 1; seed <= 12; ++seed) {
        probe("overwrite-unsynced", dir + "/image", new_data);
        disk.cut(PowerLossDisk::Cut::Torn, seed);
        disk.power_on();
        const std::string got = read_all(dir + "/image");
        REQUIRE(got.size() == old_data.size());
        for (size_t block = 0; block < got.size(); block += 4096)
            REQUIRE((got.compare(block, 4096, old_data, block, 4096) == 0 ||
                     got.compare(block, 4096, new_data, block, 4096) == 0));
        saw_old |= got == old_data;
        saw_new |= got == new_data;
        saw_mixed |= got != old_data && got != new_data;
        write_file_atomic(dir + "/image", old_data);
    }
    CHECK(saw_mixed); // 16 blocks each kept or not: a mixture is all but certain
    CHECK_FALSE(saw_new);
    (void)saw_old;
}

TEST_CASE("power loss: unsynced writes lost at random points across check, download, install, "
          "switch, boot, commit",
          "[robust][power]") {
    // OTA_POWER_LOSS_CUTS=N runs longer (the default keeps CI within a few minutes beside the
    // SIGKILL soak).
    const int target = cuts_from_environment("OTA_POWER_LOSS_CUTS", 40);
    LossyStorage storage;
    const SoakFigures f = run_power_cut_soak(target, std::min(target, 20), 20261201, storage);
    std::printf("power losses: %d (%d dropping every unsynced write, %d keeping a random part; "
                "boot-check %d, update %d, power-on %d) over %d episodes; %d updates completed, "
                "%d bootloader fallbacks; every episode ended with the newest version committed "
                "and its slot verified\n",
                f.cuts, storage.drop_cuts, storage.torn_cuts, f.killed_in[0], f.killed_in[1],
                f.killed_in[2], f.episodes, f.completed, f.rollbacks);
    CHECK(f.cuts >= target);
}

TEST_CASE("power loss: what ota-agent check stored survives a power cut", "[robust][power]") {
    // The first refresh creates state/metadata/ and stores the trusted metadata there, each file
    // synced with its folder; the new folder's own name must be synced too, or a power cut takes
    // the whole folder, and the rollback protection it holds, with it.
    slice::Slice s;
    s.release(s.image(2), 2);
    PowerLossDisk state(s.state_dir());
    slice::Result r = s.agent("check");
    INFO(r.output);
    REQUIRE(r.status == 0);
    const std::string timestamp = read_all(s.state_dir() + "/metadata/timestamp.json");
    state.cut(PowerLossDisk::Cut::Drop);
    state.power_on();
    REQUIRE(file_exists(s.state_dir() + "/metadata/timestamp.json"));
    CHECK(read_all(s.state_dir() + "/metadata/timestamp.json") == timestamp);
}
