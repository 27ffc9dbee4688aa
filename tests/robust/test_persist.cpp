// Corrupt persistent files: a corrupt agent state falls back to its copy (with a warning) instead
// of blocking every command, both copies corrupt is an error naming both, and the signed report's
// counter never goes backwards.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/service/report.h"
#include "agent/update/state.h"
#include "slice/slice_fixture.h"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// What the process writes to stderr (the log) while it lives.
class StderrCapture {
public:
    StderrCapture() : file_(tmp_.file("stderr")) {
        std::fflush(stderr);
        saved_ = ::dup(2);
        int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~StderrCapture() { restore(); }
    std::string text() {
        restore();
        return read_all(file_);
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    TempDir tmp_;
    std::string file_;
    int saved_ = -1;
};

update::AgentState installing(uint64_t version) {
    update::AgentState s;
    s.installed["rootfs"] = update::InstalledComponent{1, "A", ""};
    update::PendingUpdate p;
    p.component = "rootfs";
    p.version = version;
    p.target_path = "demo-ecu/rootfs-" + std::to_string(version);
    p.slot = "B";
    p.from_slot = "A";
    p.image_sha256 = std::string(64, 'a');
    s.pending = p;
    return s;
}

struct Corruption {
    const char* what;
    std::string bytes;
};

// The ways a file can be unusable: cut short, overwritten, emptied, or valid JSON of the wrong
// shape.
std::vector<Corruption> corruptions(const std::string& good) {
    return {{"truncated", good.substr(0, good.size() / 2)},
            {"garbage", std::string("\x7f\x00\x13garbage\xff", 11)},
            {"empty", ""},
            {"wrong types", R"({"installed": {"rootfs": {"version": "two"}}, "pending": null})"},
            {"wrong document", "[1, 2, 3]\n"}};
}

} // namespace

TEST_CASE("a corrupt agent-state.json is read from its copy, with a warning", "[engine][state]") {
    TempDir dir;
    const std::string state_dir = dir.file("state");
    const std::string file = state_dir + "/agent-state.json";
    update::AgentState s = installing(2);
    update::save_state(state_dir, s);
    s.pending->stage = update::PendingStage::Switched;
    update::save_state(state_dir, s);
    const std::string good = read_all(file);

    for (const auto& c : corruptions(good)) {
        INFO(c.what);
        write_all_file(file, c.bytes);
        StderrCapture log;
        update::AgentState loaded;
        REQUIRE_NOTHROW(loaded = update::load_state(state_dir));
        const std::string warning = log.text();
        // The copy is the state as last saved: nothing of the update is lost.
        REQUIRE(loaded.pending.has_value());
        CHECK(loaded.pending->stage == update::PendingStage::Switched);
        CHECK(loaded.pending->version == 2);
        CHECK(loaded.installed.at("rootfs").version == 1);
        INFO(warning);
        CHECK(warning.find("[warn] " + file + " is unusable") != std::string::npos);
        CHECK(warning.find(file + ".bak") != std::string::npos);
    }

    // The next save repairs the file; loading is quiet again.
    update::save_state(state_dir, update::load_state(state_dir));
    StderrCapture log;
    CHECK(update::load_state(state_dir).pending->stage == update::PendingStage::Switched);
    CHECK(log.text().empty());
}

TEST_CASE("an interrupted install is still found when its state file is corrupt",
          "[engine][state]") {
    // The first state the agent ever saves is the start of an install (target slot marked bad):
    // losing it to corruption must not make the agent believe nothing is going on.
    TempDir dir;
    const std::string state_dir = dir.file("state");
    update::save_state(state_dir, installing(2));
    write_all_file(state_dir + "/agent-state.json", "{\"installed\": {");
    update::AgentState loaded;
    REQUIRE_NOTHROW(loaded = update::load_state(state_dir));
    REQUIRE(loaded.pending.has_value());
    CHECK(loaded.pending->stage == update::PendingStage::Installing);
    CHECK(loaded.pending->slot == "B");
}

TEST_CASE("agent-state.json and its copy both unusable: an error naming both files",
          "[engine][state]") {
    TempDir dir;
    const std::string state_dir = dir.file("state");
    const std::string file = state_dir + "/agent-state.json";
    update::save_state(state_dir, installing(2));
    const std::string good = read_all(file);
    auto require_error_naming_both = [&] {
        try {
            update::load_state(state_dir);
            FAIL("a corrupt state was accepted");
        } catch (const Error& e) {
            INFO(e.what());
            CHECK(e.kind() == ErrorKind::Malformed);
            CHECK(std::string(e.what()).find(file + " is unusable") != std::string::npos);
            CHECK(std::string(e.what()).find(file + ".bak") != std::string::npos);
        }
    };
    for (const auto& c : corruptions(good)) {
        INFO(c.what);
        write_all_file(file, c.bytes);
        write_all_file(file + ".bak", c.bytes);
        require_error_naming_both();
    }
    // A corrupt file without any copy is an error too, never a fresh start.
    ::unlink((file + ".bak").c_str());
    require_error_naming_both();
}

TEST_CASE("the copy is written after the file: a cut between the two leaves both usable",
          "[engine][state]") {
    TempDir dir;
    const std::string path = dir.file("f.json");
    DurableFile f(path, 1 << 10, [](const std::string& b) {
        if (b.empty() || b.back() != '\n') throw Error(ErrorKind::Malformed, "no final newline");
    });
    CHECK_FALSE(f.load().has_value());
    f.store("one\n");
    CHECK(read_all(path) == "one\n");
    CHECK(read_all(f.backup_path()) == "one\n");
    // Power lost after the file was replaced, before its copy: the copy is one store() behind,
    // and the file (what load() trusts) is current.
    write_all_file(path, "two\n");
    CHECK(f.load()->bytes == "two\n");
    CHECK_FALSE(f.load()->from_backup);
    // Should the file then become unusable, the copy is the contents one store() earlier.
    write_all_file(path, "tw");
    CHECK(f.load()->bytes == "one\n");
    CHECK(f.load()->from_backup);
    // Bytes that could not be loaded back are refused before anything is written.
    CHECK_THROWS_AS(f.store("no newline"), Error);
    CHECK(read_all(f.backup_path()) == "one\n");
    // The file gone (deleted by hand) but its copy present: the copy, with a warning.
    ::unlink(path.c_str());
    CHECK(f.load()->bytes == "one\n");
}

TEST_CASE("ota-agent commands work from the copy of a corrupt agent-state.json",
          "[engine][state]") {
    Slice s;
    s.release(s.image(2), 2);
    Result r = s.agent("update");
    INFO(r.output);
    REQUIRE(r.status == 0);
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    r = s.agent("boot-check");
    REQUIRE(r.status == 0);
    const std::string file = s.state_dir() + "/agent-state.json";
    const std::string committed = read_all(file);

    write_all_file(file, committed.substr(0, committed.size() / 3));
    r = s.agent("status --json");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(contains(r.output, "[warn] " + file + " is unusable"));
    CHECK(contains(r.output, "using its copy " + file + ".bak"));
    CHECK(contains(r.output, "\"installed_version\": 2"));
    r = s.agent("update");
    INFO(r.output);
    CHECK(r.status == 0);
    r = s.agent("boot-check");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(s.booted_slot() == "B");
    CHECK(s.status()["installed_version"] == 2);

    // Both unusable: every command stops with an error naming both files.
    write_all_file(file, "");
    write_all_file(file + ".bak", "{\"installed\": 7}");
    r = s.agent("status");
    INFO(r.output);
    CHECK(r.status == 1);
    CHECK(contains(r.output, file + " is unusable"));
    CHECK(contains(r.output, "and so is its copy " + file + ".bak"));
}

namespace {

// A report configuration whose server refuses connections: send_report() stores the signed report
// (last-report.json) and then fails to post it, which is all these tests need.
update::AgentConfig report_config(const TempDir& dir) {
    update::AgentConfig c;
    c.hardware_id = "demo-ecu";
    c.state_dir = dir.file("state");
    c.report.url = "http://127.0.0.1:1/v1/report";
    c.report.device_key = dir.file("device.key");
    if (!file_exists(c.report.device_key))
        write_all_file(c.report.device_key, SigningKey::generate(kSchemeEcdsaP256).private_pem());
    return c;
}

// The counter of the report that send_report() signed; throws what send_report() throws unless
// it is the expected network failure.
uint64_t report_counter(const update::AgentConfig& c) {
    try {
        service::send_report(c, Json::object());
    } catch (const Error& e) {
        if (e.kind() != ErrorKind::Network) throw;
    }
    Json report = parse_json(read_all(c.state_dir + "/last-report.json"), "last report");
    return report["signed"]["counter"].get<uint64_t>();
}

} // namespace

TEST_CASE("the report counter never decreases, whichever copy is corrupt", "[engine][report]") {
    TempDir dir;
    const update::AgentConfig c = report_config(dir);
    const std::string counter = c.state_dir + "/report-counter";
    CHECK(report_counter(c) == 1);
    CHECK(report_counter(c) == 2);
    CHECK(report_counter(c) == 3);

    write_all_file(counter, "garbage\n");
    CHECK(report_counter(c) == 4);
    write_all_file(counter, "");
    CHECK(report_counter(c) == 5);
    write_all_file(counter, "2\n"); // a stale or bit-flipped smaller value is outvoted
    CHECK(report_counter(c) == 6);
    write_all_file(counter + ".bak", "1x\n");
    CHECK(report_counter(c) == 7);
    ::unlink(counter.c_str());
    CHECK(report_counter(c) == 8);
    // Both copies lost: the last report sent still holds the counter.
    ::unlink(counter.c_str());
    ::unlink((counter + ".bak").c_str());
    CHECK(report_counter(c) == 9);
}

TEST_CASE("no valid report counter: the report is refused, never sent with a repeated counter",
          "[engine][report]") {
    TempDir dir;
    const update::AgentConfig c = report_config(dir);
    const std::string counter = c.state_dir + "/report-counter";
    CHECK(report_counter(c) == 1);
    CHECK(report_counter(c) == 2);
    const std::string last = read_all(c.state_dir + "/last-report.json");

    write_all_file(counter, "x");
    write_all_file(counter + ".bak", "");
    write_all_file(c.state_dir + "/last-report.json", "{\"signed\": ");
    try {
        service::send_report(c, Json::object());
        FAIL("a report was sent without a valid counter");
    } catch (const Error& e) {
        INFO(e.what());
        CHECK(e.kind() == ErrorKind::State);
        CHECK(contains(e.what(), "refusing to send a report"));
        CHECK(contains(e.what(), counter + ":"));
        CHECK(contains(e.what(), counter + ".bak:"));
    }
    // Nothing was signed or stored, and the copies were not "repaired" to a guess.
    CHECK(read_all(c.state_dir + "/last-report.json") == "{\"signed\": ");
    CHECK(read_all(counter) == "x");

    // The operator writes a value above the server's last one: reports resume from there.
    write_all_file(counter, "41\n");
    CHECK(report_counter(c) == 42);
    CHECK(last != read_all(c.state_dir + "/last-report.json"));
}
