// Hostile sizes and corrupted storage, through the real ota-agent program on a simulated ECU with
// a model store: a model larger than the free space and a signed header claiming 8 GiB are
// refused before anything is written (on a real tmpfs mounted by the test, which needs root);
// a previous model version corrupted on disk is never rolled back to, and a corrupted current
// version is reported by status, boot-check and verify-models.
#include "agent/bundle/writer.h"
#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "models/fixture.h"
#include "robust/hostile_support.h"

#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/statvfs.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::hostile;

namespace {

std::string quote(const std::string& s) {
    return "'" + s + "'";
}

// A tmpfs mounted over `dir` for the lifetime of the object.
class Tmpfs {
public:
    Tmpfs(const std::string& dir, uint64_t size_bytes) : dir_(dir) {
        make_directories(dir);
        std::string output;
        if (run_command("mount -t tmpfs -o size=" + std::to_string(size_bytes) +
                            ",mode=0755 tmpfs " + quote(dir) + " 2>&1",
                        &output) != 0)
            FAIL("cannot mount a tmpfs at " << dir << " (" << output
                                            << "): these tests need root with CAP_SYS_ADMIN");
    }
    ~Tmpfs() {
        if (run_command("umount " + quote(dir_) + " 2>/dev/null") != 0)
            run_command("umount -l " + quote(dir_));
    }
    Tmpfs(const Tmpfs&) = delete;
    Tmpfs& operator=(const Tmpfs&) = delete;
    void resize(uint64_t size_bytes) {
        std::string output;
        const int status = run_command("mount -o remount,size=" + std::to_string(size_bytes) + " " +
                                           quote(dir_) + " 2>&1",
                                       &output);
        INFO(output);
        REQUIRE(status == 0);
    }
    uint64_t free_bytes() const {
        struct statvfs sv {};
        REQUIRE(::statvfs(dir_.c_str(), &sv) == 0);
        return static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
    }

private:
    std::string dir_;
};

// Every path under dir (recursively), relative.
void walk(const std::string& dir, const std::string& prefix, std::vector<std::string>& out) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n == "." || n == "..") continue;
        out.push_back(prefix + n);
        if (e->d_type == DT_DIR) walk(dir + "/" + n, prefix + n + "/", out);
    }
    ::closedir(d);
}

// A model bundle of one file of `size` zero bytes: tiny, however large the model it describes.
// Its image hash is the real one only when `true_hash` (8 GiB would take too long to hash).
std::string zero_model_bundle(const std::string& out, uint64_t size, bool true_hash) {
    bundle::BundleWriter w(out);
    w.set_payload_kind("model");
    w.set_files({bundle::FileEntry{"weights.bin", 0, size, 0644}});
    for (uint64_t done = 0; done < size;) {
        const uint64_t n = std::min<uint64_t>(size - done, bundle::kMaxOpOutput);
        w.add_zero(n);
        done += n;
    }
    std::string digest(64, 'a');
    if (true_hash) {
        Hasher h;
        const std::string zeros(1 << 20, '\0');
        for (uint64_t done = 0; done < size; done += zeros.size())
            h.update(zeros.data(),
                     static_cast<size_t>(std::min<uint64_t>(zeros.size(), size - done)));
        digest = h.finish_hex();
    }
    w.finish(digest);
    return out;
}

// State and model store on one small data partition, as on an ECU.
struct DataPartition : EcuFixture {
    std::string data = tmp.file("data");
    std::unique_ptr<Tmpfs> mount;
    explicit DataPartition(uint64_t size) {
        mount = std::make_unique<Tmpfs>(data, size);
        state = data + "/state";
        store = data + "/models";
        config["state_dir"] = state;
        config["models"]["store"] = store;
        config["models"]["components"]["mapdata"] = Json::object(); // no health check
        save_config();
    }
    ~DataPartition() {
        mount.reset(); // before TempDir removes the folder
    }
    void add_zero_model(const std::string& name, uint64_t version, uint64_t size, bool true_hash) {
        const std::string bundle = tmp.file(name + "-" + std::to_string(version) + ".bundle");
        zero_model_bundle(bundle, size, true_hash);
        publish("add --repo " + repo + " --bundle " + bundle + " --hardware-id " + kHw +
                " --version " + std::to_string(version) + " --component " + name + " --kind model");
    }
    void require_nothing_left_behind() {
        std::vector<std::string> files;
        walk(data, "", files);
        for (const auto& f : files) {
            INFO("data/" << f);
            CHECK(f.find(".partial") == std::string::npos);
            CHECK(f.rfind("state/download/", 0) != 0);
            CHECK(f.find(".tmp") == std::string::npos);
        }
    }
};

} // namespace

TEST_CASE("a model larger than the free space is refused before anything is written",
          "[robust][hostile]") {
    DataPartition f(8 << 20);
    f.add_zero_model("mapdata", 1, 12 << 20, true);
    const uint64_t free_before = f.mount->free_bytes();

    std::string out;
    CHECK(f.agent("update", &out) == 1);
    INFO(out);
    CHECK(contains(out, "[io]"));
    CHECK(contains(out, "No space left on device"));
    CHECK(contains(out, f.store + "/mapdata/1.partial"));
    CHECK(contains(out, "limits.storage_reserve_bytes"));
    f.require_nothing_left_behind();
    // The partition is not left full: the metadata is all the attempt kept.
    CHECK(f.mount->free_bytes() + (1 << 20) > free_before);

    // The next run can still write its state and journal: it fails the same clean way.
    CHECK(f.agent("update", &out) == 1);
    CHECK(contains(out, "No space left on device"));
    CHECK(f.agent("status --json", &out) == 0);
    f.require_nothing_left_behind();

    // With room, the same model installs.
    f.mount->resize(64 << 20);
    REQUIRE(f.agent("update", &out) == 0);
    CHECK(file_size(f.current_file("mapdata", "weights.bin")) == (12u << 20));
}

TEST_CASE("a signed header claiming an 8 GiB model is refused before a byte is written",
          "[robust][hostile]") {
    DataPartition f(8 << 20);
    f.add_zero_model("mapdata", 1, 8ull << 30, false);
    const uint64_t free_before = f.mount->free_bytes();
    std::string out;
    CHECK(f.agent("update", &out) == 1);
    INFO(out);
    CHECK(contains(out, "No space left on device"));
    CHECK(contains(out, std::to_string(8ull << 30)));
    f.require_nothing_left_behind();
    CHECK(f.mount->free_bytes() + (1 << 20) > free_before);
    // The journal and state of the next run still fit.
    CHECK(f.agent("update", &out) == 1);
    CHECK(contains(out, "No space left on device"));
    CHECK_FALSE(contains(out, "agent-state.json"));
}

TEST_CASE("a corrupted previous model is never rolled back to; a corrupted current one is reported",
          "[robust][hostile]") {
    EcuFixture f;
    f.add_model("perception", 1);
    std::string out;
    REQUIRE(f.agent("update", &out) == 0);
    f.add_model("perception", 2);
    REQUIRE(f.agent("update", &out) == 0);
    REQUIRE(f.agent_state()["installed"]["perception"]["version"] == 2);
    REQUIRE(f.agent("verify-models", &out) == 0);
    INFO(out);
    CHECK(contains(out, "perception"));

    // Version 1 (the rollback target) rots on disk.
    const std::string v1 = f.store + "/perception/1/weights.bin";
    std::string bytes = read_all(v1);
    bytes[1000] ^= 0x20;
    write_all_file(v1, bytes);

    CHECK(f.agent("verify-models", &out) == 1);
    CHECK(contains(out, "version 1"));
    CHECK(contains(out, "CORRUPTED"));
    CHECK(f.agent("rollback perception", &out) == 1);
    CHECK(contains(out, "[hash-mismatch]"));
    CHECK(contains(out, "version 2 stays current"));
    CHECK(read_all(f.current_file("perception", "weights.bin")) ==
          read_all(f.model_file("perception", 2, "weights.bin")));

    SECTION("the active version rots: status, boot-check and verify-models say so") {
        const std::string v2 = f.store + "/perception/2/labels/classes.txt";
        write_all_file(v2, read_all(v2) + "tampered\n");
        Json status;
        REQUIRE(f.agent("-q status --json", &out) == 0);
        status = parse_json(out, "status");
        CHECK(status["models"]["perception"]["intact"] == false);
        CHECK(
            contains(status["models"]["perception"]["problem"].get<std::string>(), "classes.txt"));
        REQUIRE(f.agent("status", &out) == 0);
        CHECK(contains(out, "CORRUPTED"));
        f.agent("boot-check --no-reboot", &out);
        CHECK(contains(out, "CORRUPTED: model perception version 2"));
        CHECK(f.agent("-q verify-models --json", &out) == 1);
        Json checks = parse_json(out, "verify-models");
        CHECK(checks["intact"] == false);
    }
    SECTION("an intact previous version is still rolled back to") {
        write_all_file(v1, read_all(f.model_file("perception", 1, "weights.bin")));
        REQUIRE(f.agent("rollback perception", &out) == 0);
        CHECK(read_all(f.current_file("perception", "weights.bin")) ==
              read_all(f.model_file("perception", 1, "weights.bin")));
    }
}
