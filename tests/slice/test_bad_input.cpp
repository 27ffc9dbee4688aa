// Bad input from the server, end to end: the agent (the real ota-agent against nginx on
// 127.0.0.1) must refuse it with a specific error and exit status 1, and leave the running slot,
// the boot environment and its trusted metadata exactly as they were.
#include "slice/slice_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/fs.h"
#include "manifests/publisher/repository.h"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <unistd.h>
#include <vector>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

// Version 2 is published (full bundle and delta from 1) and the agent already trusts that
// metadata (a successful `check`): what follows must not change the ECU.
struct TrustedV2 {
    Slice s;
    DeviceSnapshot before;
    TrustedV2() {
        s.release(s.image(2), 2, kHardwareId, /*delta_from_v1=*/true);
        Result check = s.agent("check");
        INFO(check.output);
        REQUIRE(check.status == 0);
        REQUIRE(check.output.find("update available: rootfs 1 -> 2") != std::string::npos);
        before = s.snapshot();
        REQUIRE(before.metadata_sha256.count("targets.json") == 1);
    }
};

std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.push_back(dir + "/" + n);
        }
        ::closedir(d);
    }
    return out;
}

// The bundles on the server (both the full and the delta bundle of version 2).
std::vector<std::string> served_bundles(const Slice& s) {
    std::vector<std::string> out;
    for (const auto& f : files_in(s.repo_dir() + "/targets/demo-ecu"))
        if (f.size() > 7 && f.compare(f.size() - 7, 7, ".bundle") == 0) out.push_back(f);
    REQUIRE(out.size() == 2);
    return out;
}

// An attacker's version 3: lists the version 2 full bundle as version 3 (same file, so the
// target is consistent); only the signatures decide whether it is trusted.
void add_version3_target(publish::Repository& repo) {
    Json& targets = repo.role("targets").body["targets"];
    const std::string from = "demo-ecu/rootfs-2.full.bundle";
    REQUIRE(targets.contains(from));
    Json entry = targets[from];
    entry["custom"]["version"] = 3;
    targets["demo-ecu/rootfs-3.full.bundle"] = entry;
    const std::string hash = entry["hashes"]["sha256"].get<std::string>();
    write_all_file(repo.targets_dir() + "/demo-ecu/" + hash + ".rootfs-3.full.bundle",
                   read_all(repo.targets_dir() + "/demo-ecu/" + hash + ".rootfs-2.full.bundle"));
}

// Publishes version 3 with the given roles signed by a key the root does not know.
void publish_forged(const Slice& s, const std::vector<std::string>& forged_roles) {
    auto repo = publish::Repository::open(s.repo_dir());
    add_version3_target(repo);
    for (const auto& role : forged_roles) {
        repo.role(role).keys.clear();
        repo.role(role).keys.push_back(SigningKey::generate(kSchemeEcdsaP256));
    }
    repo.publish();
}

uint64_t served_version(const Slice& s, const std::string& role) {
    return parse_json(read_all(s.repo_dir() + "/metadata/" + role + ".json"),
                      role)["signed"]["version"]
        .get<uint64_t>();
}

} // namespace

TEST_CASE("bad input: metadata signed by a foreign key (no repository key) is rejected") {
    TrustedV2 t;
    publish_forged(t.s, {"timestamp", "snapshot", "targets"});
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "bad-signature",
                     "timestamp metadata: 0 valid signature(s), threshold is 1", t.before);
}

TEST_CASE("bad input: targets re-signed with a foreign key are rejected") {
    // The timestamp and snapshot keys sign correctly (as after their compromise); the targets
    // key does not. The verified timestamp and snapshot become trusted as TUF requires
    // (specification 5.4/5.5); the targets role, the slots and the environment must not change.
    TrustedV2 t;
    publish_forged(t.s, {"targets"});
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "bad-signature",
                     "targets metadata: 0 valid signature(s), threshold is 1", t.before,
                     {"timestamp.json", "snapshot.json"});
}

TEST_CASE("bad input: targets with fewer signatures than the root's threshold are rejected") {
    Slice s;
    // The root the ECU ships with wants two targets signatures (crafted with the publisher
    // library): a second targets key, threshold 2, root re-signed by the root key.
    {
        auto repo = publish::Repository::open(s.repo_dir());
        SigningKey second = SigningKey::generate(kSchemeEcdsaP256);
        Json root = repo.role("root").body;
        root["keys"][publish::key_id(second)] = publish::key_object(second);
        root["roles"]["targets"]["keyids"].push_back(publish::key_id(second));
        root["roles"]["targets"]["threshold"] = 2;
        std::vector<const SigningKey*> root_keys;
        for (const auto& k : repo.role("root").keys)
            root_keys.push_back(&k);
        const std::string bytes = publish::to_bytes(publish::sign_envelope(root, root_keys));
        write_file_atomic(repo.metadata_dir() + "/1.root.json", bytes);
        write_file_atomic(repo.metadata_dir() + "/root.json", bytes);
        write_file_atomic(s.path("factory-root.json"), bytes);
        // ota-publish signs with every key in keys/: targets-0.pem and now targets-1.pem.
        write_file_atomic(s.repo_dir() + "/keys/targets-1.pem", second.private_pem());
    }
    s.release(s.image(2), 2, kHardwareId, true);
    {
        Json targets = parse_json(read_all(s.repo_dir() + "/metadata/targets.json"), "targets");
        REQUIRE(targets["signatures"].size() == 2);
    }
    Result check = s.agent("check");
    INFO(check.output);
    REQUIRE(check.status == 0); // two signatures meet the threshold
    const DeviceSnapshot before = s.snapshot();

    // Version 3 signed by one targets key only.
    REQUIRE(::unlink((s.repo_dir() + "/keys/targets-1.pem").c_str()) == 0);
    s.release(s.image(3), 3, kHardwareId);
    {
        Json targets = parse_json(read_all(s.repo_dir() + "/metadata/targets.json"), "targets");
        REQUIRE(targets["signatures"].size() == 1);
    }
    Result r = s.agent("update");
    require_rejected(s, r, "bad-signature",
                     "targets metadata: 1 valid signature(s), threshold is 2", before,
                     {"timestamp.json", "snapshot.json"});
}

TEST_CASE("bad input: expired metadata is rejected (the clock two years ahead)") {
    TrustedV2 t;
    // libfaketime comes in through LD_PRELOAD; sanitizer builds must accept that.
    Result r =
        t.s.agent("update", "", "env ASAN_OPTIONS=verify_asan_link_order=0 faketime '+2 years'");
    require_rejected(t.s, r, "expired", "root metadata expired at", t.before);
}

TEST_CASE("bad input: an expired timestamp is rejected") {
    TrustedV2 t;
    // The publisher signs a timestamp that expired a day ago.
    Json cfg = parse_json(read_all(t.s.repo_dir() + "/publisher.json"), "publisher.json");
    cfg["timestamp_days"] = -1;
    write_all_file(t.s.repo_dir() + "/publisher.json", cfg.dump(1));
    Result ts = t.s.publish("timestamp --repo " + quote(t.s.repo_dir()));
    INFO(ts.output);
    REQUIRE(ts.status == 0);
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "expired", "timestamp metadata expired at", t.before);
}

TEST_CASE("bad input: an older timestamp than the trusted one is rejected (rollback)") {
    TrustedV2 t;
    const std::string served = t.s.repo_dir() + "/metadata/timestamp.json";
    const std::string old_timestamp = read_all(served);
    const uint64_t old_version = served_version(t.s, "timestamp");
    // The agent learns a newer timestamp...
    Result ts = t.s.publish("timestamp --repo " + quote(t.s.repo_dir()));
    REQUIRE(ts.status == 0);
    REQUIRE(t.s.agent("check").status == 0);
    const DeviceSnapshot before = t.s.snapshot();
    // ...then the server (or a man in the middle) replays the older, validly signed one.
    write_all_file(served, old_timestamp);
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "rollback",
                     "timestamp version " + std::to_string(old_version) +
                         " is older than the trusted version " + std::to_string(old_version + 1),
                     before);
}

TEST_CASE("bad input: a snapshot that lists an older targets version is rejected (rollback)") {
    TrustedV2 t;
    const uint64_t trusted_targets = served_version(t.s, "targets");
    REQUIRE(trusted_targets >= 2);
    {
        // Validly signed, but targets go back one version.
        auto repo = publish::Repository::open(t.s.repo_dir());
        repo.role("targets").body["version"] = trusted_targets - 2; // publish() adds one
        repo.publish();
    }
    REQUIRE(served_version(t.s, "targets") == trusted_targets - 1);
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "rollback",
                     "targets.json version " + std::to_string(trusted_targets - 1), t.before,
                     {"timestamp.json"});
}

TEST_CASE("bad input: an older firmware version is never installed (downgrade)") {
    TrustedV2 t;
    // The ECU runs version 3; the repository offers only version 2.
    const std::string config = t.s.write_config("agent-v3.json", t.s.port(), 3);
    Result r = t.s.agent("update", config);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find("up to date (installed version 3)") != std::string::npos);
    const DeviceSnapshot after = t.s.snapshot();
    CHECK(after.slot_a_sha256 == t.before.slot_a_sha256);
    CHECK(after.slot_b_sha256 == t.before.slot_b_sha256);
    CHECK(after.env_sha256 == t.before.env_sha256);
    CHECK(after.metadata_sha256 == t.before.metadata_sha256);
    CHECK_FALSE(t.s.reboot_requested());
}

TEST_CASE("bad input: targets only for another hardware id are rejected") {
    Slice s;
    Result check = s.agent("check");
    INFO(check.output);
    REQUIRE(check.status == 0);
    const DeviceSnapshot before = s.snapshot();
    s.release(s.image(2), 2, "other-ecu", true);
    Result r = s.agent("update");
    // The metadata itself is valid and signed (so it is trusted); what is refused is the target.
    require_rejected(s, r, "wrong-hardware",
                     "newer rootfs versions exist only for other hardware (other-ecu), none for "
                     "demo-ecu",
                     before, {"timestamp.json", "snapshot.json", "targets.json"});
}

TEST_CASE("bad input: a bundle with one flipped byte is rejected, and the good one installs") {
    TrustedV2 t;
    std::map<std::string, std::string> originals;
    for (const auto& f : served_bundles(t.s)) {
        std::string bytes = read_all(f);
        originals[f] = bytes;
        bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x01);
        write_all_file(f, bytes);
    }
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "hash-mismatch", "does not match its signed length and SHA-256",
                     t.before);
    CHECK(files_in(t.s.state_dir() + "/download").empty()); // the bad download is discarded

    // The agent is not wedged: once the server has the signed bundle again, it installs.
    for (const auto& [f, bytes] : originals)
        write_all_file(f, bytes);
    Result ok = t.s.agent("update");
    INFO(ok.output);
    CHECK(ok.status == 0);
    CHECK(t.s.reboot_requested());
}

TEST_CASE("bad input: a truncated bundle is rejected") {
    TrustedV2 t;
    for (const auto& f : served_bundles(t.s)) {
        REQUIRE(file_size(f) > 2);
        REQUIRE(::truncate(f.c_str(), static_cast<off_t>(file_size(f) / 2)) == 0);
    }
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "hash-mismatch", "does not match its signed length and SHA-256",
                     t.before);
    CHECK(files_in(t.s.state_dir() + "/download").empty());
}

TEST_CASE("bad input: a bundle longer than its signed length is rejected") {
    TrustedV2 t;
    for (const auto& f : served_bundles(t.s))
        write_all_file(f, read_all(f) + std::string(4096, 'x'));
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "too-large", "body exceeds the allowed length", t.before);
}

TEST_CASE("bad input: malformed JSON metadata is rejected") {
    TrustedV2 t;
    write_all_file(t.s.repo_dir() + "/metadata/timestamp.json",
                   "{\"signed\": {\"_type\": \"timest");
    Result r = t.s.agent("update");
    require_rejected(t.s, r, "malformed", "timestamp", t.before);
}

TEST_CASE("bad input: an unreachable server is reported and changes nothing") {
    TrustedV2 t;
    // Nothing listens on this port.
    const std::string config = t.s.write_config("agent-unreachable.json", free_tcp_port());
    Result r = t.s.agent("update", config);
    require_rejected(t.s, r, "network", "Couldn't connect to server", t.before);
}

TEST_CASE("bad input: a signed bundle with a corrupt chunk stops the install; A stays active") {
    // Not an attack on the transport: the repository itself signed a bundle whose data is bad
    // (e.g. a publisher bug). The whole-file hash matches, so the agent starts writing B (marked
    // bad first) and the chunk check stops it. The running slot, the trusted root and the
    // booted slot stay; B is never made primary and no reboot is requested.
    Slice s;
    REQUIRE(s.agent("check").status == 0);
    const DeviceSnapshot before = s.snapshot();
    const std::string bundle = s.path("corrupt.bundle");
    Result made = s.publish("bundle --image " + quote(s.image(2)) + " --out " + quote(bundle));
    INFO(made.output);
    REQUIRE(made.status == 0);
    const Json info = parse_json(made.output, "ota-publish bundle");
    const uint64_t length = info["bundle_length"].get<uint64_t>();
    const uint64_t header = info["header_length"].get<uint64_t>();
    REQUIRE(length > header + 2);
    std::string bytes = read_all(bundle);
    const size_t flip = static_cast<size_t>(header + (length - header) / 2); // inside the data
    bytes[flip] = static_cast<char>(bytes[flip] ^ 0x01);
    write_all_file(bundle, bytes);
    Result added = s.publish("add --repo " + quote(s.repo_dir()) + " --bundle " + quote(bundle) +
                             " --hardware-id demo-ecu --version 2");
    INFO(added.output);
    REQUIRE(added.status == 0);

    Result r = s.agent("update");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(r.output.find("[hash-mismatch]") != std::string::npos);
    const DeviceSnapshot after = s.snapshot();
    CHECK(after.slot_a_sha256 == before.slot_a_sha256);
    CHECK(after.booted_slot == "A");
    CHECK(after.metadata_sha256.at("root.json") == before.metadata_sha256.at("root.json"));
    CHECK_FALSE(s.reboot_requested());
    auto env = s.printenv();
    CHECK(env["BOOT_ORDER"].rfind("A", 0) == 0); // A is still the first choice
    CHECK(env["BOOT_B_LEFT"] == "0");            // B was marked bad before its first write
    Json st = s.status();
    CHECK(st["installed_version"] == 1);
    CHECK(st["booted_slot"] == "A");
    // A power-on still boots A.
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    CHECK(s.booted_slot() == "A");
}
