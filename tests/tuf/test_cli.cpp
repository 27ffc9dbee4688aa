// ota-tuf-client, the client-under-test CLI, run as a separate program against the simulated
// repository: exit codes, the exact request sequence, the metadata and target folder layout after
// each call, and one run under faketime.
#include "agent/tuf/metadata.h"
#include "agent/tuf/updater.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"

#include <catch2/catch.hpp>
#include <cstdlib>

using namespace ota;
using namespace ota::test;
using Requests = std::vector<std::string>;
using Files = std::map<std::string, std::string>;

namespace {

std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

struct Cli {
    RepoSim& repo;
    TempDir tmp;
    std::string md = tmp.file("metadata");
    std::string td = tmp.file("targets");
    std::string output;

    explicit Cli(RepoSim& r) : repo(r) {}

    int run(const std::string& args, const std::string& prefix = "") {
        return run_command(prefix + built_program("ota-tuf-client") + " " + args, &output);
    }
    int init(const std::string& root_bytes) {
        write_all_file(tmp.file("trusted-root.json"), root_bytes);
        return run("--metadata-dir " + quote(md) + " init " + quote(tmp.file("trusted-root.json")));
    }
    int refresh(const std::string& prefix = "") {
        return run("--metadata-url " + quote(repo.metadata_url()) + " --metadata-dir " + quote(md) +
                       " refresh",
                   prefix);
    }
    int download(const std::vector<std::string>& names) {
        std::string args =
            "--metadata-url " + quote(repo.metadata_url()) + " --metadata-dir " + quote(md);
        for (const auto& n : names)
            args += " --target-name " + quote(n);
        args += " --target-dir " + quote(td) + " --target-base-url " + quote(repo.targets_url()) +
                " download";
        return run(args);
    }
    Files metadata() const { return dir_files(md, "root_history"); }
    Files targets() const { return dir_files(td); }
    Files expected_metadata(const std::vector<std::string>& roles) const {
        Files out;
        for (const auto& r : roles)
            out[tuf::role_filename(r)] = repo.published.at(r);
        return out;
    }
};

const std::vector<std::string> kTopLevel = {"root", "timestamp", "snapshot", "targets"};

} // namespace

TEST_CASE("cli: init stores the trusted root without any request - refresh fetches the sequence") {
    TestHttpServer server;
    RepoSim repo(server);
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    CHECK(server.requests().empty());
    CHECK(cli.metadata() == Files{{"root.json", repo.initial_root}});
    REQUIRE(cli.refresh() == 0);
    INFO(cli.output);
    CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json",
                                        "/metadata/1.snapshot.json", "/metadata/1.targets.json"});
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));
    // A root rotation later on: N+1 fetched until 404, the stored root is the new bytes.
    repo.bump_root();
    repo.bump_root();
    server.clear_requests();
    REQUIRE(cli.refresh() == 0);
    CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/3.root.json",
                                        "/metadata/4.root.json", "/metadata/timestamp.json"});
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));
}

TEST_CASE("cli: an invalid or unsigned initial root fails with exit 1 before any request") {
    TestHttpServer server;
    RepoSim repo(server);
    Cli cli(repo);
    Json env = Json::parse(repo.initial_root);
    env["signatures"][0]["sig"] = std::string(142, 'b');
    cli.init(env.dump()); // may refuse already; refresh must fail either way
    CHECK(cli.refresh() == 1);
    CHECK(server.requests().empty());
    CHECK(cli.init("not json") == 1);
}

TEST_CASE("cli: download finds, fetches and stores verified targets, skipping cached ones") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_artifact("targets", "path/to/a/file.txt", "first contents");
    repo.add_artifact("targets", "top.bin", "top");
    repo.bump_targets();
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    const int status = cli.download({"path/to/a/file.txt", "top.bin"});
    INFO(cli.output);
    REQUIRE(status == 0);
    const std::string artifact = repo.artifact_path("path/to/a/file.txt", "first contents");
    CHECK(artifact == "/targets/path/to/a/" + sha256_hex("first contents") + ".file.txt");
    CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json",
                                        "/metadata/2.snapshot.json", "/metadata/2.targets.json",
                                        artifact, repo.artifact_path("top.bin", "top")});
    CHECK(cli.targets() ==
          Files{{"path%2Fto%2Fa%2Ffile.txt", "first contents"}, {"top.bin", "top"}});
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));

    SECTION("a verified copy already in the target folder is not fetched again") {
        server.clear_requests();
        REQUIRE(cli.download({"path/to/a/file.txt"}) == 0);
        CHECK(server.requests() == Requests{"/metadata/2.root.json", "/metadata/timestamp.json"});
    }
    SECTION("a changed target overwrites the same file") {
        repo.add_artifact("targets", "path/to/a/file.txt", "second contents");
        repo.bump_targets();
        REQUIRE(cli.download({"path/to/a/file.txt"}) == 0);
        CHECK(cli.targets() ==
              Files{{"path%2Fto%2Fa%2Ffile.txt", "second contents"}, {"top.bin", "top"}});
    }
}

TEST_CASE("cli: a substituted or endless artifact fails and leaves nothing in the target folder") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_artifact("targets", "good.txt", "good contents");
    repo.add_artifact("targets", "other.txt", "other contents");
    repo.bump_targets();
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    REQUIRE(cli.download({"good.txt"}) == 0);
    const Files before = cli.targets();
    SECTION("same length, other bytes") {
        server.put(repo.artifact_path("other.txt", "other contents"), "OTHER contents");
    }
    SECTION("longer than the listed length") {
        server.set_endless(repo.artifact_path("other.txt", "other contents"));
    }
    SECTION("missing on the server") {
        server.remove(repo.artifact_path("other.txt", "other contents"));
    }
    CHECK(cli.download({"other.txt"}) == 1);
    CHECK(cli.targets() == before);
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));
}

TEST_CASE("cli: download stops at the first target that fails") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_artifact("targets", "present.txt", "here");
    repo.bump_targets();
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    CHECK(cli.download({"absent.txt", "present.txt"}) == 1);
    CHECK(cli.targets().empty());
    // The refresh before the search still happened and was persisted.
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));
    auto req = server.requests();
    CHECK(req.size() == 4);
}

TEST_CASE("cli: delegated targets are found and their roles stored under encoded names") {
    TestHttpServer server;
    RepoSim repo(server);
    repo.add_delegation("targets", "/delegated role", Json::array({"dir/*"}));
    repo.add_artifact("/delegated role", "dir/file", "delegated data");
    repo.publish_role("/delegated role");
    repo.bump_targets();
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    const int status = cli.download({"dir/file"});
    INFO(cli.output);
    REQUIRE(status == 0);
    auto req = server.requests();
    REQUIRE(req.size() == 6);
    CHECK(req[4] == "/metadata/1.%2Fdelegated%20role.json");
    CHECK(req[5] == "/targets/dir/" + sha256_hex("delegated data") + ".file");
    auto expected = cli.expected_metadata(kTopLevel);
    expected["%2Fdelegated%20role.json"] = repo.published["/delegated role"];
    CHECK(cli.metadata() == expected);
    CHECK(cli.targets() == Files{{"dir%2Ffile", "delegated data"}});
}

TEST_CASE("cli: under faketime the metadata expires and refresh fails with exit 1") {
    if (run_command("faketime -h") == 127) FAIL("faketime is not installed");
    if (std::getenv("OTA_TEST_EMULATOR")) return; // LD_PRELOAD does not reach into qemu-user
    // libfaketime comes in through LD_PRELOAD, ahead of the sanitizer runtime in an ASan build;
    // keep whatever other sanitizer options the caller set.
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::string env =
        "env ASAN_OPTIONS=" + std::string(asan && *asan ? asan : "detect_leaks=0") +
        ":verify_asan_link_order=0 ";
    TestHttpServer server;
    RepoSim repo(server);
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    REQUIRE(cli.refresh() == 0);
    const Files before = cli.metadata();
    repo.bump_timestamp();
    CHECK(cli.refresh(env + "faketime '+400 days' ") ==
          1); // root and targets expire after 365 days
    INFO(cli.output);
    CHECK(cli.output.find("expired") != std::string::npos);
    CHECK(cli.metadata() == before);
    CHECK(cli.refresh(env + "faketime '+20 days' ") == 0); // within every expiry: the new timestamp
    CHECK(cli.metadata().at("timestamp.json") == repo.published["timestamp"]);
}

TEST_CASE("cli: usage errors exit with 1, never 2") {
    TestHttpServer server;
    RepoSim repo(server);
    Cli cli(repo);
    CHECK(cli.run("") == 1);
    CHECK(cli.run("--metadata-dir " + quote(cli.md) + " frobnicate") == 1);
    CHECK(cli.run("--no-such-option x refresh") == 1);
    CHECK(cli.run("--metadata-dir") == 1);
    CHECK(cli.run("--metadata-dir " + quote(cli.md) + " refresh") == 1); // no --metadata-url
    CHECK(cli.run("--metadata-dir " + quote(cli.md) + " init") == 1);
    CHECK(cli.run("--metadata-dir " + quote(cli.md) + " init /nonexistent/root.json") == 1);
    REQUIRE(cli.init(repo.initial_root) == 0);
    CHECK(cli.run("--metadata-url " + quote(repo.metadata_url()) + " --metadata-dir " +
                  quote(cli.md) + " download") == 1); // no target name
    CHECK(cli.run("--metadata-url http://127.0.0.1:1/ --metadata-dir " + quote(cli.md) +
                  " refresh") == 1); // nothing listens there
}

TEST_CASE("cli: the program is dynamically linked") {
    if (std::getenv("OTA_TEST_EMULATOR")) return;
    std::string out;
    REQUIRE(run_command("ldd " + built_program("ota-tuf-client"), &out) == 0);
    CHECK(out.find("libc.so") != std::string::npos);
}

TEST_CASE("cli: the metadata URL is used verbatim with its percent-escapes") {
    TestHttpServer server;
    RepoSim repo(server);
    for (const char* file : {"1.root.json", "timestamp.json", "1.snapshot.json", "1.targets.json"})
        server.put(std::string("/my%20repo/") + file, server.get(std::string("/metadata/") + file));
    Cli cli(repo);
    REQUIRE(cli.init(repo.initial_root) == 0);
    const int status = cli.run("--metadata-url " + quote(server.url("/my%20repo/")) +
                               " --metadata-dir " + quote(cli.md) + " refresh");
    INFO(cli.output);
    CHECK(status == 0);
    CHECK(server.requests() == Requests{"/my%20repo/2.root.json", "/my%20repo/timestamp.json",
                                        "/my%20repo/1.snapshot.json", "/my%20repo/1.targets.json"});
    CHECK(cli.metadata() == cli.expected_metadata(kTopLevel));
}
