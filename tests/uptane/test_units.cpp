// The uptane library's parts on their own: signed reports, director instructions, the
// cross-check of the two repositories, pushed metadata, the trust store, partial verification
// and the configuration. Real keys and signatures, real files.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/tuf/metadata.h"
#include "agent/uptane/config.h"
#include "agent/uptane/director_targets.h"
#include "agent/uptane/partial_verification.h"
#include "agent/uptane/pushed_metadata.h"
#include "agent/uptane/trust_store.h"
#include "agent/uptane/verification.h"
#include "agent/uptane/version_report.h"
#include "manifests/publisher/repository.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::test;
using namespace ota::uptane;

namespace {

template <typename F> void require_error(F&& f, ErrorKind kind, const std::string& text) {
    try {
        f();
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(error_kind_name(e.kind()) == std::string(error_kind_name(kind)));
        CHECK(std::string(e.what()).find(text) != std::string::npos);
        return;
    }
    FAIL("expected " << error_kind_name(kind) << ": " << text);
}

EcuVersionReport sample_report() {
    EcuVersionReport r;
    r.ecu_serial = "ecu-1";
    r.hardware_id = "hw";
    r.installed = InstalledImage{"hw/rootfs-2.full.bundle",
                                 100,
                                 {{"sha256", std::string(64, 'a')}},
                                 4096,
                                 std::string(64, 'b')};
    r.installed_version = 2;
    r.time = 1700000000;
    r.counter = 5;
    r.nonce = "00ff";
    return r;
}

tuf::TargetFile image_target(const std::string& path, const std::string& hw, uint64_t version) {
    tuf::TargetFile t;
    t.path = path;
    t.length = 1234;
    t.hashes = {{"sha256", std::string(64, 'c')}};
    t.custom =
        Json{{"hardware_id", hw},
             {"version", version},
             {"kind", "firmware"},
             {"component", "rootfs"},
             {"image", Json{{"length", 4096}, {"sha256", std::string(64, 'd')}}},
             {"bundle", Json{{"header_sha256", std::string(64, 'e')}, {"header_length", 300}}}};
    return t;
}

EcuInstruction instruction_for(const tuf::TargetFile& image, const std::string& serial,
                               const std::string& hw) {
    EcuInstruction i{serial, hw, image};
    i.target.custom["ecu_identifiers"] = Json{{serial, Json{{"hardware_id", hw}}}};
    return i;
}

} // namespace

TEST_CASE("uptane units: ECU version reports are signed, bound to their ECU and not replayable") {
    SigningKey key = SigningKey::generate(kSchemeEcdsaP256);
    const PublicKey pub = public_key_of(key);
    Json doc = sign_report(sample_report(), key);
    EcuVersionReport back = verify_report(doc, "ecu-1", pub, 4);
    CHECK(back.counter == 5);
    CHECK(back.installed == sample_report().installed);
    CHECK(report_to_json(back) == report_to_json(sample_report()));

    require_error([&] { verify_report(doc, "ecu-1", pub, 5); }, ErrorKind::Rollback, "replayed");
    require_error([&] { verify_report(doc, "ecu-2", pub, 0); }, ErrorKind::Malformed,
                  "names ECU ecu-1");
    SigningKey other = SigningKey::generate(kSchemeEcdsaP256);
    require_error([&] { verify_report(doc, "ecu-1", public_key_of(other), 0); },
                  ErrorKind::BadSignature, "not signed by that ECU's key");
    Json tampered = doc;
    tampered["signed"]["installed_version"] = 3;
    require_error([&] { verify_report(tampered, "ecu-1", pub, 0); }, ErrorKind::BadSignature, "");
    // A signature that claims another method is not taken as the key's.
    Json method = doc;
    method["signatures"][0]["method"] = kSchemeRsaPss;
    CHECK_FALSE(document_signed_by(method, pub));
    // Too many signatures is hostile, not a reason to try them all.
    Json many = doc;
    for (int i = 0; i < 10; ++i)
        many["signatures"].push_back(doc["signatures"][0]);
    CHECK_FALSE(document_signed_by(many, pub));
    // Unknown fields and oversized values are refused.
    Json extra = report_to_json(sample_report());
    extra["surprise"] = 1;
    require_error([&] { report_from_json(extra); }, ErrorKind::Malformed, "unknown field");
    Json long_serial = report_to_json(sample_report());
    long_serial["ecu_serial"] = std::string(500, 's');
    require_error([&] { report_from_json(long_serial); }, ErrorKind::TooLarge, "longer than");
    // RSA-PSS keys sign reports too: the scheme comes from the key.
    SigningKey rsa = SigningKey::generate(kSchemeRsaPss, 2048);
    CHECK(
        verify_report(sign_report(sample_report(), rsa), "ecu-1", public_key_of(rsa), 0).counter ==
        5);
}

TEST_CASE("uptane units: director targets rules") {
    auto envelope_of = [](const Json& targets_body) {
        SigningKey k = SigningKey::generate(kSchemeEcdsaP256);
        return tuf::parse_envelope(publish::to_bytes(publish::sign_envelope(targets_body, {&k})),
                                   "targets");
    };
    Json body{{"_type", "targets"},   {"spec_version", "1.0.31"},
              {"version", 1},         {"expires", "2099-01-01T00:00:00Z"},
              {"vehicle_id", "VIN1"}, {"targets", Json::object()}};
    tuf::TargetFile a = image_target("hw/a.bundle", "hw", 2);
    Json entry{{"length", a.length},
               {"hashes", Json{{"sha256", a.hashes["sha256"]}}},
               {"custom", a.custom}};
    entry["custom"]["ecu_identifiers"] =
        Json{{"ecu-1", Json{{"hardware_id", "hw"}}}, {"ecu-2", Json{{"hardware_id", "hw"}}}};
    body["targets"]["hw/a.bundle"] = entry;
    tuf::Envelope env = envelope_of(body);
    DirectorInstructions d = parse_director_targets(env, tuf::parse_targets(env));
    CHECK(d.vehicle_id == std::string("VIN1"));
    REQUIRE(d.instructions.size() == 2);
    REQUIRE(d.for_ecu("ecu-2"));
    CHECK(d.for_ecu("ecu-2")->target.path == "hw/a.bundle");

    Json twice = body;
    twice["targets"]["hw/b.bundle"] = entry;
    env = envelope_of(twice);
    require_error([&] { parse_director_targets(env, tuf::parse_targets(env)); },
                  ErrorKind::Malformed, "list ECU ecu-1 more than once");
    Json delegating = body;
    delegating["delegations"] = Json{{"keys", Json::object()}, {"roles", Json::array()}};
    env = envelope_of(delegating);
    require_error([&] { parse_director_targets(env, tuf::parse_targets(env)); },
                  ErrorKind::Malformed, "must not delegate");
    Json anonymous = body;
    anonymous.erase("vehicle_id");
    anonymous["targets"] = Json::object();
    env = envelope_of(anonymous);
    require_error([&] { parse_director_targets(env, tuf::parse_targets(env)); },
                  ErrorKind::Malformed, "must name the vehicle");
    Json no_ids = body;
    no_ids["targets"]["hw/a.bundle"]["custom"].erase("ecu_identifiers");
    env = envelope_of(no_ids);
    require_error([&] { parse_director_targets(env, tuf::parse_targets(env)); },
                  ErrorKind::Malformed, "ecu_identifiers");
}

TEST_CASE("uptane units: an instruction must match the image repository's target") {
    const tuf::TargetFile image = image_target("hw/rootfs-2.full.bundle", "hw", 2);
    const EcuIdentity ecu{"ecu-1", "hw"};
    ImageTargetLookup lookup = [&](const std::string& name) -> std::optional<tuf::TargetFile> {
        if (name == image.path) return image;
        return std::nullopt;
    };
    EcuInstruction good = instruction_for(image, "ecu-1", "hw");
    VerifiedTarget v = verify_instruction(good, ecu, lookup, 1);
    CHECK(v.version() == 2);
    CHECK(v.image.custom == image.custom); // the image repository's fields are the ones kept

    for (const char* field : {"version", "image", "bundle", "hardware_id", "kind"}) {
        EcuInstruction changed = good;
        changed.target.custom[field] = "other";
        require_error([&] { verify_instruction(changed, ecu, lookup, 0); }, ErrorKind::HashMismatch,
                      std::string("custom field \"") + field + "\" differs");
    }
    EcuInstruction extra_hash = good;
    extra_hash.target.hashes["sha512"] = std::string(128, 'f');
    require_error([&] { verify_instruction(extra_hash, ecu, lookup, 0); }, ErrorKind::HashMismatch,
                  "hashes differ");
    require_error([&] { verify_instruction(good, ecu, lookup, 3); }, ErrorKind::Rollback,
                  "release counter 2 is below the 3 instructed before");
    require_error(
        [&] {
            verify_instruction(good, EcuIdentity{"ecu-1", "hw2"}, lookup, 0);
        },
        ErrorKind::WrongHardware, "names hardware id hw, the ECU is hw2");

    DirectorInstructions director{std::string("VIN1"), {good}};
    CHECK(verify_director_targets(director, "VIN1", {ecu}, lookup).count("ecu-1") == 1);
    require_error([&] { verify_director_targets(director, "VIN2", {ecu}, lookup); },
                  ErrorKind::WrongHardware, "for vehicle VIN1, this is VIN2");
    require_error(
        [&] {
            verify_director_targets(director, "VIN1", {{"ecu-9", "hw"}}, lookup);
        },
        ErrorKind::WrongHardware, "not in vehicle VIN1");
}

TEST_CASE("uptane units: pushed metadata is served by name and bounded") {
    RepositoryMetadata m;
    m.roots = {{2, "root-2"}, {3, "root-3"}};
    m.timestamp = "ts";
    m.snapshot = "snap";
    m.targets = "targets";
    m.delegated = {{"supplier a", "deleg"}};
    PushedFetcher f(m, "pushed://image/");
    CHECK(f.fetch("pushed://image/timestamp.json", 100) == "ts");
    CHECK(f.fetch("pushed://image/7.snapshot.json", 100) == "snap");
    CHECK(f.fetch("pushed://image/snapshot.json", 100) == "snap");
    CHECK(f.fetch("pushed://image/12.targets.json", 100) == "targets");
    CHECK(f.fetch("pushed://image/3.root.json", 100) == "root-3");
    CHECK(f.fetch("pushed://image/1.supplier%20a.json", 100) == "deleg");
    require_error([&] { f.fetch("pushed://image/4.root.json", 100); }, ErrorKind::NotFound, "");
    require_error([&] { f.fetch("pushed://image/x.snapshot.json", 100); }, ErrorKind::NotFound, "");
    require_error([&] { f.fetch("pushed://director/timestamp.json", 100); }, ErrorKind::NotFound,
                  "");
    require_error([&] { f.fetch("pushed://image/targets.json", 3); }, ErrorKind::TooLarge, "");

    SecondaryMetadata s{m, m};
    SecondaryMetadata back = metadata_from_json(metadata_to_json(s));
    CHECK(back.director.roots == m.roots);
    REQUIRE(back.image);
    CHECK(back.image->delegated == m.delegated);
    Json big = metadata_to_json(s);
    big["director"]["targets"] = std::string(MetadataLimits::director().targets + 1, 't');
    require_error([&] { metadata_from_json(big); }, ErrorKind::TooLarge, "");
    Json bad_version = metadata_to_json(s);
    bad_version["director"]["roots"]["two"] = "x";
    require_error([&] { metadata_from_json(bad_version); }, ErrorKind::Malformed,
                  "root versions must be decimal numbers");
}

TEST_CASE("uptane units: the trust store replaces trusted metadata as a whole") {
    TempDir tmp;
    const std::string dir = tmp.file("trust");
    {
        TrustStore store(dir);
        const std::string first = store.current();
        std::string staged = store.stage();
        write_all_file(staged + "/root.json", "v1");
        store.commit(staged);
        CHECK(read_all(store.current() + "/root.json") == "v1");
        CHECK_FALSE(file_exists(first)); // the old generation is gone

        staged = store.stage();
        CHECK(read_all(staged + "/root.json") == "v1"); // a copy
        write_all_file(staged + "/root.json", "v2");
        store.discard(staged);
        CHECK(read_all(store.current() + "/root.json") == "v1");

        // A power cut after staging: the stale generation is removed at the next open.
        staged = store.stage();
        write_all_file(staged + "/root.json", "half");
    }
    TrustStore reopened(dir);
    CHECK(read_all(reopened.current() + "/root.json") == "v1");
    std::string listing;
    REQUIRE(run_command("ls " + dir, &listing) == 0);
    CHECK(listing == "current\n" + reopened.current().substr(dir.size() + 1) + "\n");
}

TEST_CASE("uptane units: partial verification follows root rotations and refuses rollbacks") {
    TempDir tmp;
    publish::Repository repo = publish::Repository::create(tmp.file("director"), {});
    const std::string root1 = read_all(tmp.file("director/metadata/1.root.json"));
    repo.role("targets").body["vehicle_id"] = "VIN1";
    repo.publish();
    const std::string targets2 = read_all(tmp.file("director/metadata/targets.json"));
    const int64_t now = tuf::system_time_now();

    RepositoryMetadata pushed;
    pushed.targets = targets2;
    PartialResult r = verify_partial(PartialTrust{root1, ""}, pushed, now);
    CHECK(r.director.vehicle_id == std::string("VIN1"));
    CHECK(r.trust.targets == targets2);

    // The targets key is rotated (root 2); the new targets are only valid with root 2 pushed.
    repo.rotate_keys("targets");
    const std::string root2 = read_all(tmp.file("director/metadata/2.root.json"));
    const std::string targets3 = read_all(tmp.file("director/metadata/targets.json"));
    pushed.targets = targets3;
    require_error([&] { verify_partial(r.trust, pushed, now); }, ErrorKind::BadSignature,
                  "director targets");
    pushed.roots[2] = root2;
    PartialResult rotated = verify_partial(r.trust, pushed, now);
    CHECK(rotated.trust.root == root2);

    // Targets signed by the revoked key are refused.
    RepositoryMetadata revoked;
    revoked.targets = targets2;
    require_error([&] { verify_partial(rotated.trust, revoked, now); }, ErrorKind::BadSignature,
                  "director targets");
    // Older targets than the trusted ones (rollback).
    repo.publish();
    const std::string targets4 = read_all(tmp.file("director/metadata/targets.json"));
    RepositoryMetadata older;
    older.targets = targets3;
    require_error(
        [&] {
            verify_partial(PartialTrust{root2, targets4}, older, now);
        },
        ErrorKind::Rollback, "older than the trusted version");
    // The same version with other content.
    Json changed = parse_json(targets3, "targets")["signed"];
    changed["targets"]["x"] =
        Json{{"length", 1}, {"hashes", Json{{"sha256", std::string(64, '0')}}}};
    RepositoryMetadata equal_version;
    equal_version.targets =
        publish::to_bytes(publish::sign_envelope(changed, {&repo.role("targets").keys[0]}));
    require_error(
        [&] {
            verify_partial(PartialTrust{root2, targets3}, equal_version, now);
        },
        ErrorKind::Rollback, "differs from the trusted copy of that version");
    // Expired metadata at the ECU's time (a freeze).
    RepositoryMetadata current;
    current.targets = targets4;
    require_error(
        [&] {
            verify_partial(PartialTrust{root2, ""}, current, now + 400 * 86400);
        },
        ErrorKind::Expired, "expired");
}

TEST_CASE("uptane units: the primary's configuration is parsed strictly") {
    TempDir tmp;
    write_all_file(tmp.file("ecu.pub"), SigningKey::generate(kSchemeEcdsaP256).public_pem());
    const Json good{{"vehicle_id", "VIN1"},
                    {"primary", Json{{"ecu_serial", "p"}, {"hardware_id", "hw"}, {"key", "p.key"}}},
                    {"state_dir", "uptane"},
                    {"repositories", Json{{"director", Json{{"metadata_url", "http://d/m"},
                                                            {"trusted_root", "d.json"}}},
                                          {"image", Json{{"metadata_url", "http://i/m/"},
                                                         {"targets_url", "http://i/t"},
                                                         {"trusted_root", "i.json"}}}}},
                    {"manifest_url", "http://d/manifest"},
                    {"secondaries", Json::array({Json{{"ecu_serial", "s1"},
                                                      {"hardware_id", "hw1"},
                                                      {"address", "10.0.0.2:9701"},
                                                      {"verification", "partial"},
                                                      {"public_key_file", "ecu.pub"},
                                                      {"key_scheme", kSchemeEcdsaP256}}})}};
    UptaneConfig c = parse_uptane_config(good, tmp.path());
    CHECK(c.director.metadata_url == "http://d/m/");
    CHECK(c.image.targets_url == "http://i/t/");
    CHECK(c.trust_dir() == tmp.file("uptane") + "/trust");
    REQUIRE(c.secondaries.size() == 1);
    CHECK(c.secondaries[0].port == 9701);
    CHECK(c.secondaries[0].verification == VerificationMode::Partial);
    CHECK(c.vehicle_ecus().size() == 2);

    Json typo = good;
    typo["manifest_ulr"] = "x";
    require_error([&] { parse_uptane_config(typo, tmp.path()); }, ErrorKind::Config,
                  "unknown field \"manifest_ulr\"");
    Json mapping = good;
    mapping["mapping"] = Json::array(
        {Json{{"paths", Json::array({"*"})}, {"repositories", Json::array({"image"})}}});
    require_error([&] { parse_uptane_config(mapping, tmp.path()); }, ErrorKind::Config,
                  "only [{\"paths\": [\"*\"]");
    Json twice = good;
    twice["secondaries"][0]["ecu_serial"] = "p";
    require_error([&] { parse_uptane_config(twice, tmp.path()); }, ErrorKind::Config,
                  "configured twice");
    Json port = good;
    port["secondaries"][0]["address"] = "10.0.0.2:99999";
    require_error([&] { parse_uptane_config(port, tmp.path()); }, ErrorKind::Config, "bad port");
}
