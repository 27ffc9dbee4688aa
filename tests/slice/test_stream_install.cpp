// Installs straight from the network (download_mode "stream", the default): no copy of the bundle
// on disk, cut connections resumed from the install journal with Range requests, a corrupted
// byte refused with nothing switched. Real nginx on 127.0.0.1, behind the fault proxy.
#include "slice/slice_fixture.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "robust/fault_proxy.h"

#include <catch2/catch.hpp>
#include <dirent.h>
#include <random>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;
using ota::test::robust::Fault;
using ota::test::robust::FaultKind;
using ota::test::robust::FaultProxy;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

size_t count(const std::string& haystack, const std::string& needle) {
    size_t n = 0;
    for (size_t pos = 0; (pos = haystack.find(needle, pos)) != std::string::npos; ++pos)
        ++n;
    return n;
}

// Entries of a folder (none when it does not exist).
std::vector<std::string> entries(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d))
            if (std::string(e->d_name) != "." && std::string(e->d_name) != "..")
                out.push_back(e->d_name);
        ::closedir(d);
    }
    return out;
}

// The agent through the proxy: no retries (a cut ends the run, the next run resumes from the
// journal), a checkpoint every 64 KiB (many resume points in a 4 MiB image).
std::string stream_config(const Slice& s, int port, const std::string& mode = "stream") {
    const std::string path = s.write_config("stream-" + std::to_string(port) + ".json", port);
    Json c = parse_json(read_all(path), "agent.json");
    c["transport"] = Json{{"retries", 0}, {"connect_timeout_s", 5}};
    c["install_checkpoint_bytes"] = 65536;
    c["download_mode"] = mode;
    write_all_file(path, c.dump(1) + "\n");
    return path;
}

// The one bundle a release without a delta puts on the server.
std::string bundle_path(const Slice& s) {
    const std::string dir = s.repo_dir() + "/targets/" + kHardwareId;
    std::vector<std::string> bundles;
    for (const std::string& name : entries(dir))
        if (name.size() > 7 && name.compare(name.size() - 7, 7, ".bundle") == 0)
            bundles.push_back(dir + "/" + name);
    REQUIRE(bundles.size() == 1);
    return bundles[0];
}

// The slot the bootloader tries first (BOOT_ORDER's first name).
std::string boots_first(const Slice& s) {
    const std::string order = s.printenv()["BOOT_ORDER"];
    return order.substr(0, order.find(' '));
}

std::string slot_sha256(const Slice& s, const std::string& slot) {
    return file_sha256_hex(s.ecu_dir() + "/slot-" + slot + ".img",
                           static_cast<int64_t>(kImageSize));
}

} // namespace

TEST_CASE("a streamed install cut at random points resumes and ends byte-exact", "[stream]") {
    Slice s;
    s.release(s.image(2), 2);
    const std::string bundle = bundle_path(s);
    const uint64_t bundle_size = file_size(bundle);
    const std::string v1 = slot_sha256(s, "A"), v2 = file_sha256_hex(s.image(2));

    std::mt19937_64 rng(1414);
    // Each connection is cut at a random response byte (metadata and bundle share it: one
    // keep-alive connection per run), until a run gets through. Half the cuts close the
    // connection early, half reset it; a reset also drops what the agent's socket still buffered,
    // so where the agent stops then depends on timing, while an early close delivers every byte
    // up to the cut and so also reaches the later operations.
    FaultProxy proxy(s.port(), [&](uint64_t index) {
        Fault f;
        f.kind = index % 2 ? FaultKind::Cut : FaultKind::Truncate;
        f.offset = std::uniform_int_distribution<uint64_t>(0, bundle_size)(rng);
        return f;
    });
    const std::string config = stream_config(s, proxy.port());
    Result r;
    int cut_runs = 0;
    bool resumed = false, saw_partial_slot = false;
    for (int run = 0; run < 40; ++run) {
        r = s.agent("update --no-reboot", config);
        if (r.status == 0) break;
        INFO(r.output);
        REQUIRE(r.status == 1);
        ++cut_runs;
        // A cut leaves no copy of the bundle anywhere in the state folder and never switches.
        CHECK(entries(s.state_dir() + "/download").empty());
        CHECK(boots_first(s) == "A");
        CHECK(slot_sha256(s, "A") == v1);
        CHECK(s.booted_slot() == "A");
        if (file_exists(s.state_dir() + "/install-journal.json")) saw_partial_slot = true;
        if (contains(r.output, "resuming installation at operation")) resumed = true;
        // Later runs get the whole stream more often, so the test ends.
        if (run >= 20) proxy.set_planner([](uint64_t) { return Fault{}; });
    }
    INFO(r.output);
    REQUIRE(r.status == 0);
    if (contains(r.output, "resuming installation at operation")) resumed = true;
    CHECK(cut_runs > 0);
    CHECK(saw_partial_slot);
    CHECK(resumed);
    CHECK(slot_sha256(s, "B") == v2);
    CHECK(slot_sha256(s, "A") == v1);
    CHECK(boots_first(s) == "B");
    CHECK(entries(s.state_dir() + "/download").empty());
    CHECK_FALSE(file_exists(s.state_dir() + "/install-journal.json"));
    // The resumed runs asked nginx for the rest of the bundle only.
    const std::string log = read_all(s.path("nginx-run/access.log"));
    CHECK(count(log, "\" 206 ") > 0);
}

TEST_CASE("an uninterrupted stream is checked against the signed target hash", "[stream]") {
    Slice s;
    s.release(s.image(2), 2);
    Result r = s.agent("update --no-reboot", stream_config(s, s.port()));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "streaming"));
    CHECK(contains(r.output, "bundle matched its signed length and SHA-"));
    CHECK(entries(s.state_dir() + "/download").empty());
    CHECK(slot_sha256(s, "B") == file_sha256_hex(s.image(2)));
}

TEST_CASE("a corrupted byte in the stream is refused and nothing is switched", "[stream]") {
    Slice s;
    s.release(s.image(2), 2);
    const std::string bundle = bundle_path(s);
    const std::string v1 = slot_sha256(s, "A");
    std::string bytes = read_all(bundle);
    const std::string pristine = bytes;
    SECTION("in a blob") {
        bytes[bytes.size() * 2 / 3] ^= 0x10;
    }
    SECTION("in the header") {
        bytes[40] ^= 0x01;
    }
    SECTION("in the last byte") {
        bytes[bytes.size() - 1] ^= 0x80;
    }
    write_all_file(bundle, bytes);
    Result r = s.agent("update --no-reboot", stream_config(s, s.port()));
    INFO(r.output);
    REQUIRE(r.status == 1);
    CHECK(contains(r.output, "[hash-mismatch]"));
    CHECK(boots_first(s) == "A");
    CHECK(slot_sha256(s, "A") == v1);
    CHECK(s.booted_slot() == "A");
    CHECK_FALSE(s.reboot_requested());
    CHECK(s.status()["installed_version"] == 1);
    CHECK(entries(s.state_dir() + "/download").empty());

    // The server's copy repaired, the next run installs it.
    write_all_file(bundle, pristine);
    Result again = s.agent("update --no-reboot", stream_config(s, s.port()));
    INFO(again.output);
    REQUIRE(again.status == 0);
    CHECK(slot_sha256(s, "B") == file_sha256_hex(s.image(2)));
}

TEST_CASE("download_mode staged keeps downloading the whole bundle first", "[stream]") {
    Slice s;
    s.release(s.image(2), 2);
    Result r = s.agent("update --no-reboot", stream_config(s, s.port(), "staged"));
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "checking the bundle against the signed target"));
    CHECK_FALSE(contains(r.output, "streaming"));
    CHECK(slot_sha256(s, "B") == file_sha256_hex(s.image(2)));
}

TEST_CASE("fetch_range delivers each byte once across cut connections", "[stream]") {
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    make_directories(dir.file("www"));
    const std::string body = pseudo_random_bytes(3 << 20, 9);
    write_all_file(dir.file("www/b.bin"), body);
    Nginx nginx(dir.file("www"), dir.file("run"));
    // The first three connections are cut part-way through the answer, at different bytes.
    FaultProxy proxy(nginx.port(), [](uint64_t index) {
        Fault f;
        if (index < 3) {
            f.kind = FaultKind::Cut;
            f.offset = 400000 * (index + 1);
        }
        return f;
    });
    net::TransportOptions o;
    o.retries = 3;
    o.retry_base_ms = 1;
    o.retry_max_ms = 2;
    net::CurlFetcher fetcher(o);
    const std::string url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/b.bin";
    std::string got;
    net::RangeSink sink{
        [&](const uint8_t* d, size_t n) { got.append(reinterpret_cast<const char*>(d), n); }, {}};
    fetcher.fetch_range(url, 1000, body.size(), sink);
    CHECK(got == body.substr(1000));
    CHECK(proxy.applied_total() == 3);
    const std::string log = read_all(dir.file("run/access.log"));
    CHECK(count(log, "\" 206 ") >= 1);

    // A range past the object's end is an error, not a short success.
    got.clear();
    CHECK_THROWS_AS(fetcher.fetch_range(url, 0, body.size() + 10, sink), Error);
    // Cancelled: stops with Error(State).
    net::RangeSink stop{[](const uint8_t*, size_t) {}, [] { return true; }};
    try {
        fetcher.fetch_range(url, 0, body.size(), stop);
        FAIL("not cancelled");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::State);
    }
}
