// What a download costs: the requests of one fetcher share one keep-alive connection (counted at
// nginx), and file:// repositories and bundles are read without loading libcurl at all.
#include "slice/slice_fixture.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "agent/net/file_fetcher.h"

#include <catch2/catch.hpp>
#include <set>
#include <sstream>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::slice;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

// The connection serials nginx logged (conn=N), one per request.
std::vector<std::string> logged_connections(const std::string& access_log) {
    std::vector<std::string> out;
    std::istringstream lines(access_log);
    for (std::string line; std::getline(lines, line);) {
        auto at = line.rfind(" conn=");
        if (at != std::string::npos) out.push_back(line.substr(at + 6));
    }
    return out;
}

} // namespace

TEST_CASE("one fetcher's requests share one keep-alive connection", "[fetch]") {
    TempDir dir;
    ::chmod(dir.path().c_str(), 0755);
    make_directories(dir.file("www"));
    const std::string a = pseudo_random_bytes(3000, 1), b = pseudo_random_bytes(200000, 2);
    write_all_file(dir.file("www/a.bin"), a);
    write_all_file(dir.file("www/b.bin"), b);
    std::string got_b;
    {
        Nginx nginx(dir.file("www"), dir.file("run"));
        const std::string base = "http://127.0.0.1:" + std::to_string(nginx.port()) + "/";
        net::CurlFetcher fetcher;
        CHECK(fetcher.fetch(base + "a.bin", 1 << 20) == a);
        // A resumed download sets a Range offset on the handle; the next request must not keep it.
        write_all_file(dir.file("b.part"), b.substr(0, 1000));
        fetcher.fetch_to_file(base + "b.bin", dir.file("b.part"), b.size(), true, {});
        CHECK(read_all(dir.file("b.part")) == b);
        got_b = fetcher.fetch(base + "b.bin", 1 << 20);
        CHECK_THROWS_AS(fetcher.fetch(base + "missing.bin", 1 << 20), Error);
        CHECK(fetcher.fetch(base + "a.bin", 1 << 20) == a);
    }
    CHECK(got_b == b);
    const std::string log = read_all(dir.file("run/access.log"));
    INFO(log);
    const auto conns = logged_connections(log);
    CHECK(conns.size() == 5);
    CHECK(std::set<std::string>(conns.begin(), conns.end()).size() == 1);
    CHECK(contains(log, "\"GET /b.bin HTTP/1.1\" 206 "));
}

TEST_CASE("file URLs are read without libcurl, bounded like HTTP", "[fetch]") {
    TempDir dir;
    const std::string data = pseudo_random_bytes(700000, 3);
    make_directories(dir.file("a dir"));
    write_all_file(dir.file("a dir/x.bin"), data);
    const std::string url = "file://" + dir.path() + "/a%20dir/x.bin";
    net::FileFetcher f;
    CHECK(net::file_url_path(url) == dir.file("a dir/x.bin"));
    CHECK(net::file_url_path("file://localhost" + dir.path() + "/a%20dir/x.bin") ==
          dir.file("a dir/x.bin"));
    for (const char* bad : {"file://example.com/x", "file:x", "file:///a%2", "file:///a%00b",
                            "file:///a?b", "file:///a#b"})
        CHECK_THROWS_AS(net::file_url_path(bad), Error);

    CHECK(f.fetch(url, data.size()) == data);
    auto kind = [](auto&& fn) {
        try {
            fn();
        } catch (const Error& e) {
            return e.kind();
        }
        return ErrorKind::State;
    };
    CHECK(kind([&] { f.fetch(url, data.size() - 1); }) == ErrorKind::TooLarge);
    CHECK(kind([&] { f.fetch(url + "-missing", 1 << 20); }) == ErrorKind::NotFound);
    CHECK(kind([&] { f.fetch("file://" + dir.path(), 1 << 20); }) == ErrorKind::NotFound);
    CHECK(kind([] { net::FileFetcher().fetch("file:///dev/zero", 1 << 20); }) ==
          ErrorKind::NotFound);

    uint64_t last = 0;
    write_all_file(dir.file("out"), data.substr(0, 12345));
    f.fetch_to_file(url, dir.file("out"), data.size(), true, [&](uint64_t done, uint64_t) {
        CHECK(done > last);
        last = done;
    });
    CHECK(read_all(dir.file("out")) == data);
    CHECK(last == data.size());
    write_all_file(dir.file("out"), data + "longer than the source");
    f.fetch_to_file(url, dir.file("out"), data.size(), true, {}); // starts over
    CHECK(read_all(dir.file("out")) == data);
    CHECK(kind([&] { f.fetch_to_file(url, dir.file("o2"), 1000, false, {}); }) ==
          ErrorKind::TooLarge);
    // CurlFetcher hands file URLs to FileFetcher.
    CHECK(net::CurlFetcher().fetch(url, data.size()) == data);
}

TEST_CASE("an update from a file:// repository does not load libcurl", "[fetch]") {
    Slice s;
    s.release(s.image(2), 2);
    Json config = parse_json(read_all(s.config()), "agent.json");
    config["metadata_url"] = "file://" + s.repo_dir() + "/metadata/";
    config["targets_url"] = "file://" + s.repo_dir() + "/targets/";
    write_all_file(s.path("local.json"), config.dump());
    // glibc's loader names every library it maps.
    Result r = s.agent("update --no-reboot", s.path("local.json"), "env LD_DEBUG=files");
    INFO(r.output);
    REQUIRE(r.status == 0);
    CHECK(contains(r.output, "slot B verified end to end"));
    CHECK(contains(r.output, "file=libzstd")); // the loader's trace is there
    CHECK_FALSE(contains(r.output, "libcurl"));
}
