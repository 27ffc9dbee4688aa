// Hostile servers and hostile URLs: error pages with a body (503, 404) and a 206 that does not
// start where it was asked must never reach the partial download; target paths with spaces, '#',
// '?' or '%' are fetched percent-encoded, a path that climbs out of the targets folder is refused
// before any request; downloads are private to the agent, and a refused one is deleted.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "models/fixture.h"
#include "robust/fault_proxy.h"
#include "robust/hostile_support.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"
#include "tuf/repo_sim.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <dirent.h>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::hostile;
using namespace ota::test::robust;
using ota::test::slice::quote;

namespace {

// "Range: bytes=N-" of a request head; 0 when there is none.
uint64_t range_start(const std::string& head) {
    auto pos = head.find("Range: bytes=");
    if (pos == std::string::npos) return 0;
    return std::stoull(head.substr(pos + 13));
}

void answer(int fd, const std::string& status_line, const std::string& headers,
            const std::string& body) {
    send_all(fd, "HTTP/1.1 " + status_line + "\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n" + headers + "Connection: close\r\n\r\n" + body);
}

mode_t file_mode(const std::string& path) {
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

std::vector<std::string> names_in(const std::string& dir) {
    std::vector<std::string> out;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.push_back(n);
        }
        ::closedir(d);
    }
    return out;
}

} // namespace

TEST_CASE("HTTP error pages never land in the partial download; the next run resumes correctly",
          "[robust][hostile]") {
    const std::string object = pseudo_random_bytes(256 * 1024 + 77, 5);
    const std::string error_page =
        "<html><body><h1>503 Service Unavailable</h1>try again later</body></html>\n";
    const size_t half = object.size() / 2;
    // What each connection gets, in order.
    std::atomic<int> script{0};
    std::vector<std::string> heads;
    std::mutex heads_mutex;
    TcpServer server([&](int fd, uint64_t) {
        const std::string head = read_request_head(fd);
        {
            std::lock_guard<std::mutex> lock(heads_mutex);
            heads.push_back(head);
        }
        const uint64_t from = range_start(head);
        switch (script.load()) {
        case 0: answer(fd, "503 Service Unavailable", "Retry-After: 1\r\n", error_page); break;
        case 1: answer(fd, "404 Not Found", "", "<html>no such object</html>\n"); break;
        case 2: // the whole object announced, half of it sent, then the connection drops
            send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(object.size()) +
                             "\r\nConnection: close\r\n\r\n" + object.substr(0, half));
            break;
        case 3: // a Range request gets a 206 from the wrong offset: the object's beginning
            if (from)
                answer(fd, "206 Partial Content",
                       "Content-Range: bytes 0-" + std::to_string(object.size() - from - 1) + "/" +
                           std::to_string(object.size()) + "\r\n",
                       object.substr(0, object.size() - from));
            else
                answer(fd, "200 OK", "", object);
            break;
        default:
            if (from)
                answer(fd, "206 Partial Content",
                       "Content-Range: bytes " + std::to_string(from) + "-" +
                           std::to_string(object.size() - 1) + "/" + std::to_string(object.size()) +
                           "\r\n",
                       object.substr(from));
            else
                answer(fd, "200 OK", "", object);
        }
    });
    TempDir tmp;
    const std::string path = tmp.file("object.partial");
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/object.bin";
    net::CurlFetcher fetcher;
    auto fetch = [&] { fetcher.fetch_to_file(url, path, object.size(), true, nullptr); };
    auto held = [&] { return file_exists(path) ? read_all(path) : std::string(); };

    CHECK_THROWS_AS(fetch(), Error); // 503 with a page
    CHECK(held().empty());
    script = 1;
    CHECK_THROWS_AS(fetch(), Error); // 404 with a page
    CHECK(held().empty());
    script = 2;
    CHECK_THROWS_AS(fetch(), Error); // cut in the middle: half of the object is kept
    REQUIRE(held() == object.substr(0, half));
    script = 0;
    CHECK_THROWS_AS(fetch(), Error); // 503 to the Range request: still exactly that half
    CHECK(held() == object.substr(0, half));
    {
        std::lock_guard<std::mutex> lock(heads_mutex);
        CHECK(range_start(heads.back()) == half);
    }
    script = 4;
    fetch(); // resumes after the half
    CHECK(held() == object);
    {
        std::lock_guard<std::mutex> lock(heads_mutex);
        CHECK(range_start(heads.back()) == half);
    }

    SECTION("a 206 that does not start where asked is not appended") {
        write_all_file(path, object.substr(0, half));
        script = 3;
        // The misplaced part is refused; the download starts over from byte 0.
        fetch();
        CHECK(held() == object);
    }
}

TEST_CASE("target paths are percent-encoded in URLs; a path leaving the targets folder is refused",
          "[robust][hostile]") {
    TestHttpServer server;
    RepoSim repo(server);
    const std::string spaced = "release notes/v1 final #2?.txt";
    const std::string content = "contents of a target whose name has a space";
    repo.add_artifact("targets", spaced, content);
    // Served where a client that encodes like python-tuf asks for it.
    server.remove(repo.artifact_path(spaced, content));
    const std::string encoded =
        "/targets/release%20notes/" + sha256_hex(content) + ".v1%20final%20%232%3F.txt";
    server.put(encoded, content);
    repo.add_artifact("targets", "../escape.txt", "outside");
    repo.add_artifact("targets", "a//b.txt", "empty segment");
    repo.bump_targets();

    TempDir tmp;
    write_all_file(tmp.file("root.json"), repo.initial_root);
    const std::string client =
        built_program("ota-tuf-client") + " --metadata-dir " + quote(tmp.file("md"));
    REQUIRE(run_command(client + " init " + quote(tmp.file("root.json"))) == 0);
    auto download = [&](const std::string& name, std::string* output) {
        return run_command(client + " --metadata-url " + quote(repo.metadata_url()) +
                               " --target-name " + quote(name) + " --target-dir " +
                               quote(tmp.file("targets")) + " --target-base-url " +
                               quote(repo.targets_url()) + " download 2>&1",
                           output);
    };
    std::string output;
    int status = download(spaced, &output);
    INFO(output);
    CHECK(status == 0);
    const auto requests = server.requests();
    CHECK(std::find(requests.begin(), requests.end(), encoded) != requests.end());
    CHECK(read_all(tmp.file("targets/release%20notes%2Fv1%20final%20%232%3F.txt")) == content);

    for (const std::string& bad : {std::string("../escape.txt"), std::string("a//b.txt")}) {
        INFO(bad);
        server.clear_requests();
        status = download(bad, &output);
        INFO(output);
        CHECK(status == 1);
        CHECK(contains(output, "has an empty, \".\" or \"..\" segment"));
        for (const auto& r : server.requests())
            CHECK(r.rfind("/metadata/", 0) == 0); // no target request at all
    }
}

TEST_CASE("install file:///etc/shadow: the copy is private to the agent and deleted when refused",
          "[robust][hostile]") {
    EcuFixture f;
    const std::string secret = f.tmp.file("shadow");
    write_all_file(secret, "root:$y$j9T$secret-hash:19000:0:99999:7:::\n");
    ::chmod(secret.c_str(), 0600);
    std::string out;
    CHECK(f.agent("install file://" + secret, &out) == 1);
    INFO(out);
    CHECK(contains(out, "not a target of the signed metadata"));
    CHECK(names_in(f.state + "/download").empty());

    SECTION("every download is created owner-only, even over an older world-readable file") {
        const std::string dest = f.tmp.file("download.bin");
        net::CurlFetcher fetcher;
        fetcher.fetch_to_file("file://" + secret, dest, 1 << 20, false, nullptr);
        CHECK(file_mode(dest) == 0600);
        ::chmod(dest.c_str(), 0644);
        fetcher.fetch_to_file("file://" + secret, dest, 1 << 20, true, nullptr);
        CHECK(file_mode(dest) == 0600);
        CHECK(read_all(dest) == read_all(secret));
    }
}
