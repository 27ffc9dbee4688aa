// The agent's state directory on a full filesystem and on a read-only one (a real tmpfs mounted
// by the test; this needs root): the agent must fail with an error naming the path and the cause,
// leave nothing half-written (no *.tmp files, no partial download hogging the space), keep its
// trusted metadata and the ECU (slot A, boot environment) unchanged, and complete the update once
// the storage is usable again.
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// A tmpfs mounted over `dir` for the lifetime of the object.
class TmpfsMount {
public:
    TmpfsMount(const std::string& dir, uint64_t size_bytes) : dir_(dir) {
        make_directories(dir);
        std::string output;
        const int status = run_command("mount -t tmpfs -o size=" + std::to_string(size_bytes) +
                                           ",mode=0755 tmpfs " + quote(dir) + " 2>&1",
                                       &output);
        if (status != 0)
            FAIL("cannot mount a tmpfs at " << dir << " (" << output
                                            << "): the storage tests need root with "
                                               "CAP_SYS_ADMIN (they do not pass without it)");
    }
    ~TmpfsMount() {
        if (run_command("umount " + quote(dir_) + " 2>/dev/null") != 0)
            run_command("umount -l " + quote(dir_));
    }
    TmpfsMount(const TmpfsMount&) = delete;
    TmpfsMount& operator=(const TmpfsMount&) = delete;
    void remount(const std::string& options) {
        std::string output;
        const int status =
            run_command("mount -o remount," + options + " " + quote(dir_) + " 2>&1", &output);
        INFO(output);
        REQUIRE(status == 0);
    }

private:
    std::string dir_;
};

// Fills the filesystem holding `dir` to the last byte.
void fill(const std::string& dir) {
    run_command("dd if=/dev/zero of=" + quote(dir + "/filler") + " bs=4096 2>/dev/null");
    run_command("dd if=/dev/zero of=" + quote(dir + "/filler-small") + " bs=1 2>/dev/null");
    REQUIRE(run_command("echo x > " + quote(dir + "/probe") + " 2>/dev/null") != 0);
}

void unfill(const std::string& dir) {
    for (const char* f : {"/filler", "/filler-small", "/probe"})
        ::unlink((dir + f).c_str());
}

// Every file under dir (recursively), relative names.
void walk(const std::string& dir, const std::string& prefix, std::vector<std::string>& out) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        struct stat st {};
        if (::lstat((dir + "/" + n).c_str(), &st) == 0 && S_ISDIR(st.st_mode))
            walk(dir + "/" + n, prefix + n + "/", out);
        else
            out.push_back(prefix + n);
    }
    ::closedir(d);
}

void require_nothing_half_written(const Slice& s) {
    std::vector<std::string> files;
    walk(s.state_dir(), "", files);
    for (const auto& f : files) {
        INFO("state/" << f);
        CHECK(f.find(".tmp") == std::string::npos);
        CHECK(f.rfind("download/", 0) != 0); // no partial bundle left holding the space
    }
}

void check_ok(const Slice& s) {
    Result check = s.agent("check");
    INFO(check.output);
    REQUIRE(check.status == 0);
}

void update_boot_commit(Slice& s, uint64_t version) {
    Result update = s.agent("update");
    INFO(update.output);
    REQUIRE(update.status == 0);
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    Result commit = s.agent("boot-check");
    INFO(commit.output);
    REQUIRE(commit.status == 0);
    CHECK(contains(commit.output, "rootfs version " + std::to_string(version) + " committed"));
    CHECK(file_sha256_hex(s.ecu_dir() + "/slot-B.img", static_cast<int64_t>(kImageSize)) ==
          file_sha256_hex(s.image(version)));
}

uint64_t published_bundle_size(const Slice& s, uint64_t version) {
    std::vector<std::string> files;
    walk(s.repo_dir() + "/targets", "", files);
    const std::string suffix = ".rootfs-" + std::to_string(version) + ".full.bundle";
    for (const auto& f : files)
        if (f.size() > suffix.size() &&
            f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
            return file_size(s.repo_dir() + "/targets/" + f);
    FAIL("no bundle of version " << version);
    return 0;
}

} // namespace

TEST_CASE("storage full during the download: ENOSPC named, partial removed, then completes",
          "[robust][storage]") {
    Slice s;
    s.release(s.image(2), 2);
    // Room for the metadata and half of the bundle.
    const uint64_t bundle = published_bundle_size(s, 2);
    TmpfsMount state(s.state_dir(), 256 * 1024 + bundle / 2);
    check_ok(s);
    const DeviceSnapshot before = s.snapshot();

    Result r = s.agent("update");
    require_rejected(s, r, "io", "No space left on device", before);
    CHECK(contains(r.output, s.state_dir() + "/download/"));
    require_nothing_half_written(s);

    state.remount("size=" + std::to_string(bundle + (4 << 20)));
    update_boot_commit(s, 2);
}

TEST_CASE("storage full: new metadata cannot be stored, the trusted metadata stays intact",
          "[robust][storage]") {
    Slice s;
    s.release(s.image(2), 2);
    TmpfsMount state(s.state_dir(), 16 << 20);
    check_ok(s);
    // The server moves on (new timestamp, snapshot and targets) while the disk is full.
    s.release(s.image(3), 3);
    fill(s.state_dir());
    const DeviceSnapshot before = s.snapshot();

    Result r = s.agent("update");
    require_rejected(s, r, "io", "No space left on device", before);
    CHECK(contains(r.output, s.state_dir() + "/metadata/"));
    unfill(s.state_dir());
    require_nothing_half_written(s);

    update_boot_commit(s, 3);
}

TEST_CASE("storage full when the install starts: the running slot stays the boot choice",
          "[robust][storage]") {
    Slice s;
    s.release(s.image(2), 2);
    TmpfsMount state(s.state_dir(), 16 << 20);
    check_ok(s);
    // The bundle is already downloaded completely (an earlier attempt), so the first write of
    // this run is the install's state; then the disk is full.
    std::vector<std::string> files;
    walk(s.repo_dir() + "/targets/demo-ecu", "", files);
    std::string served;
    for (const auto& f : files)
        if (contains(f, ".rootfs-2.full.bundle")) served = f;
    REQUIRE_FALSE(served.empty());
    make_directories(s.state_dir() + "/download");
    write_all_file(s.state_dir() + "/download/" + served.substr(0, served.find('.')) + ".bundle",
                   read_all(s.repo_dir() + "/targets/demo-ecu/" + served));
    // No reserve: the space check passes (nothing left to download), the first write fails.
    Json config = parse_json(read_all(s.config()), "agent.json");
    config["limits"] = Json{{"storage_reserve_bytes", 0}};
    write_all_file(s.config(), config.dump(1));
    fill(s.state_dir());
    const std::string slot_a = file_sha256_hex(s.ecu_dir() + "/slot-A.img");

    Result r = s.agent("update");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, "[io]"));
    CHECK(contains(r.output, "No space left on device"));
    CHECK(contains(r.output, s.state_dir()));
    // Slot A runs and is what the bootloader picks; nothing asks for a reboot.
    CHECK(file_sha256_hex(s.ecu_dir() + "/slot-A.img") == slot_a);
    CHECK(s.printenv()["BOOT_ORDER"].rfind("A", 0) == 0);
    CHECK(s.booted_slot() == "A");
    CHECK_FALSE(s.reboot_requested());
    CHECK(s.status()["pending"].is_null());
    std::vector<std::string> state_files;
    walk(s.state_dir(), "", state_files);
    for (const auto& f : state_files) {
        INFO("state/" << f);
        CHECK(f.find(".tmp") == std::string::npos);
    }

    unfill(s.state_dir());
    update_boot_commit(s, 2);
}

TEST_CASE("read-only state directory: EROFS named, nothing changes, then completes",
          "[robust][storage]") {
    Slice s;
    s.release(s.image(2), 2);
    TmpfsMount state(s.state_dir(), 16 << 20);
    check_ok(s);

    SECTION("new metadata to store") {
        s.release(s.image(3), 3);
        state.remount("ro");
        const DeviceSnapshot before = s.snapshot();
        Result r = s.agent("update");
        require_rejected(s, r, "io", "Read-only file system", before);
        CHECK(contains(r.output, s.state_dir() + "/metadata/"));
        state.remount("rw");
        require_nothing_half_written(s);
        update_boot_commit(s, 3);
    }
    SECTION("metadata current, the download cannot be stored") {
        state.remount("ro");
        const DeviceSnapshot before = s.snapshot();
        Result r = s.agent("update");
        require_rejected(s, r, "io", "Read-only file system", before);
        CHECK(contains(r.output, s.state_dir() + "/download"));
        state.remount("rw");
        require_nothing_half_written(s);
        update_boot_commit(s, 2);
    }
}
