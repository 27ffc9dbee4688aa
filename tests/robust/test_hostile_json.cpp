// Hostile JSON and hostile configuration files, through the real programs: metadata nested a
// hundred thousand levels deep from a server on 127.0.0.1 (ota-tuf-client and ota-agent), a
// FIFO given as the configuration, TLS files that do not exist. Each must end in a clear error
// with exit status 1, and nothing stored.
#include "agent/common/canonical_json.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "robust/hostile_support.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::hostile;
using ota::test::slice::quote;

namespace {

struct DeepShape {
    const char* name;
    bool arrays;
    size_t levels;
};
const DeepShape kShapes[] = {{"150,000 nested arrays", true, 150000},
                             {"60,000 nested objects", false, 60000}};

} // namespace

TEST_CASE("JSON entry point: depth bounded while parsing, invalid UTF-8 refused with its offset",
          "[robust][hostile]") {
    for (const auto& shape : kShapes) {
        INFO(shape.name);
        try {
            parse_json(deep_envelope(shape.arrays, shape.levels), "2.root.json");
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.kind() == ErrorKind::Malformed);
            CHECK(contains(e.what(), "2.root.json"));
            CHECK(contains(e.what(), "nested deeper than 64 levels"));
        }
    }
    // 64 levels are fine, 65 are not.
    CHECK_NOTHROW(parse_json(std::string(64, '[') + std::string(64, ']'), "doc"));
    CHECK_THROWS_AS(parse_json(std::string(65, '[') + std::string(65, ']'), "doc"), Error);

    for (const std::string& bad : {std::string("{\"a\":\"\xff\"}"), std::string("\xff"),
                                   std::string("{\"a\":\"\xc0\xaf\"}"),      // overlong '/'
                                   std::string("{\"a\":\"\xed\xa0\x80\"}"),  // a surrogate
                                   std::string("[\"\xf4\x90\x80\x80\"]")}) { // above U+10FFFF
        INFO(printable(bad));
        try {
            parse_json(bad, "request");
            FAIL("accepted");
        } catch (const Error& e) {
            CHECK(e.kind() == ErrorKind::Malformed);
            CHECK(contains(e.what(), "invalid UTF-8 at byte"));
            // The message itself can go into a JSON answer.
            CHECK(invalid_utf8_offset(e.what()) == std::string::npos);
        }
    }
    CHECK(parse_json("{\"name\":\"caf\xc3\xa9 \xf0\x9f\x9a\x97\"}", "doc")["name"] ==
          "caf\xc3\xa9 \xf0\x9f\x9a\x97");
    // Syntax errors quote the input: their messages are printable too.
    try {
        parse_json("[1,\x01]", "doc");
        FAIL("accepted");
    } catch (const Error& e) {
        CHECK(invalid_utf8_offset(e.what()) == std::string::npos);
    }
}

TEST_CASE(
    "deep unsigned root from the server: ota-tuf-client refresh fails cleanly, stores nothing",
    "[robust][hostile]") {
    for (const auto& shape : kShapes) {
        INFO(shape.name);
        TestHttpServer server;
        RepoSim repo(server);
        TempDir tmp;
        const std::string md = tmp.file("metadata");
        write_all_file(tmp.file("root.json"), repo.initial_root);
        const std::string client = built_program("ota-tuf-client") + " --metadata-dir " + quote(md);
        REQUIRE(run_command(client + " init " + quote(tmp.file("root.json"))) == 0);
        const std::string deep = deep_envelope(shape.arrays, shape.levels);
        REQUIRE(deep.size() < 512 * 1024); // below the root size cap: it is parsed
        server.put("/metadata/2.root.json", deep);

        std::string output;
        const int status = run_command(
            client + " --metadata-url " + quote(repo.metadata_url()) + " refresh 2>&1", &output);
        INFO(output);
        CHECK(status == 1);
        CHECK(contains(output, "nested deeper than 64 levels"));
        CHECK(dir_files(md, "root_history") ==
              std::map<std::string, std::string>{{"root.json", repo.initial_root}});
        CHECK(dir_files(md + "/root_history").size() == 1); // only the root of `init`
    }
}

TEST_CASE("deep unsigned root from nginx: ota-agent check and update fail cleanly, change nothing",
          "[robust][hostile]") {
    slice::Slice s;
    s.release(s.image(2), 2);
    slice::Result first = s.agent("check");
    INFO(first.output);
    REQUIRE(first.status == 0);
    for (const auto& shape : kShapes) {
        INFO(shape.name);
        write_all_file(s.repo_dir() + "/metadata/2.root.json",
                       deep_envelope(shape.arrays, shape.levels));
        const slice::DeviceSnapshot before = s.snapshot();
        for (const char* command : {"check", "update"}) {
            INFO(command);
            slice::Result r = s.agent(command);
            slice::require_rejected(s, r, "malformed", "nested deeper than 64 levels", before);
        }
    }
}

TEST_CASE("a FIFO as the configuration file is refused at once, never waited on",
          "[robust][hostile]") {
    TempDir tmp;
    const std::string fifo = tmp.file("agent.json");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    for (const char* command : {"validate", "status", "check"}) {
        INFO(command);
        std::string output;
        // `timeout` only keeps a blocked agent from hanging the suite; it is no timing assertion.
        const int status = run_command("timeout 120 " + built_program("ota-agent") + " --config " +
                                           quote(fifo) + " " + command + " 2>&1",
                                       &output);
        INFO(output);
        CHECK(status == 1);
        CHECK(contains(output, fifo + " is not a regular file"));
    }
}

TEST_CASE("validate checks the TLS files the transport names", "[robust][hostile]") {
    slice::Slice s;
    REQUIRE(s.agent("validate").status == 0);
    TempDir tmp;
    const std::string fifo = tmp.file("key.fifo");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    write_all_file(tmp.file("cert.pem"), "-----BEGIN CERTIFICATE-----\n");
    struct Case {
        const char* key;
        Json transport;
        std::string named;
    };
    const std::string missing = tmp.file("missing.pem");
    const Case cases[] = {
        {"transport.ca_file", Json{{"ca_file", missing}}, missing},
        {"transport.client_cert",
         Json{{"client_cert", missing}, {"client_key", tmp.file("cert.pem")}}, missing},
        {"transport.client_key",
         Json{{"client_cert", tmp.file("cert.pem")}, {"client_key", missing}}, missing},
        {"transport.client_key", Json{{"client_cert", tmp.file("cert.pem")}, {"client_key", fifo}},
         fifo},
        {"transport.pinned_public_key", Json{{"pinned_public_key", missing}}, missing},
    };
    for (const auto& c : cases) {
        INFO(c.key << " " << c.transport.dump());
        Json config = parse_json(read_all(s.config()), "agent.json");
        config["transport"] = c.transport;
        write_all_file(tmp.file("agent.json"), config.dump(1));
        slice::Result r = s.agent("validate", tmp.file("agent.json"), "timeout 120");
        INFO(r.output);
        CHECK(r.status == 1);
        CHECK(contains(r.output, std::string("\"") + c.key + "\""));
        CHECK(contains(r.output, c.named));
    }
    // A pin given as hashes names no file.
    Json config = parse_json(read_all(s.config()), "agent.json");
    config["transport"] =
        Json{{"pinned_public_key", "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
             {"ca_file", tmp.file("cert.pem")}};
    write_all_file(tmp.file("agent.json"), config.dump(1));
    slice::Result ok = s.agent("validate", tmp.file("agent.json"));
    INFO(ok.output);
    CHECK(ok.status == 0);
}
