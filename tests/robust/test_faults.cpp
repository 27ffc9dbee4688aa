// The transport under a hostile network: resume with Range requests (and restart when the
// server ignores them or the object changed), bounded retries with backoff and jitter, the
// low-speed timeout against a stalling server, bodies bounded against endless data, the
// bandwidth cap. Servers are real nginx on 127.0.0.1, the fault proxy, or scripted servers.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "robust/fault_proxy.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

#include <atomic>
#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;
using namespace ota::test::robust;
using ota::test::slice::quote;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

template <typename F> std::string expect_error(ErrorKind kind, F&& f) {
    try {
        f();
    } catch (const Error& e) {
        INFO("error: " << e.what());
        CHECK(error_kind_name(e.kind()) == std::string(error_kind_name(kind)));
        return e.what();
    }
    FAIL("no error was raised");
    return "";
}

// nginx serving www/ at / (ranges honoured) and again at /noranges/ with ranges disabled.
struct Site {
    TempDir tmp;
    std::string object = pseudo_random_bytes(3 * 1024 * 1024 + 123, 11);
    std::unique_ptr<TestNginx> nginx;
    Site() {
        ::chmod(tmp.path().c_str(), 0755);
        run_command("mkdir -p " + quote(tmp.file("www")));
        write_all_file(tmp.file("www/object.bin"), object);
        nginx = std::make_unique<TestNginx>(tmp.file("nginx"), "server {\n"
                                                               "    listen 127.0.0.1:@PORT@;\n"
                                                               "    root " +
                                                                   tmp.file("www") +
                                                                   ";\n"
                                                                   "    location / { }\n"
                                                                   "    location /noranges/ {\n"
                                                                   "        alias " +
                                                                   tmp.file("www") +
                                                                   "/;\n"
                                                                   "        max_ranges 0;\n"
                                                                   "    }\n"
                                                                   "}\n");
    }
    std::string url(const std::string& path, int port = 0) const {
        return "http://127.0.0.1:" + std::to_string(port ? port : nginx->port()) + path;
    }
};

net::TransportOptions quick_retries(int retries) {
    net::TransportOptions o;
    o.retries = retries;
    o.retry_base_ms = 5;
    o.retry_max_ms = 50;
    o.connect_timeout_s = 5;
    o.low_speed_time_s = 5;
    return o;
}

} // namespace

TEST_CASE("resume: a partial download is completed with a Range request", "[robust][resume]") {
    Site site;
    const std::string out = site.tmp.file("object.download");
    const uint64_t have = 1000 * 1000;
    write_all_file(out, site.object.substr(0, have));
    uint64_t first_progress = 0;
    net::CurlFetcher fetcher;
    fetcher.fetch_to_file(site.url("/object.bin"), out, site.object.size(), true,
                          [&](uint64_t done, uint64_t) {
                              if (!first_progress) first_progress = done;
                          });
    CHECK(read_all(out) == site.object);
    // Only the rest crossed the network: nginx answered 206 with size - have bytes.
    CHECK(contains(site.nginx->access_log(), "\"GET /object.bin HTTP/1.1\" 206 " +
                                                 std::to_string(site.object.size() - have)));
    CHECK(first_progress > have);

    SECTION("a complete file is not fetched again") {
        const size_t before = site.nginx->access_log().size();
        fetcher.fetch_to_file(site.url("/object.bin"), out, site.object.size(), true, {});
        CHECK(site.nginx->access_log().size() == before);
        CHECK(read_all(out) == site.object);
    }
    SECTION("resume=false starts over") {
        write_all_file(out, std::string(10, 'x'));
        fetcher.fetch_to_file(site.url("/object.bin"), out, site.object.size(), false, {});
        CHECK(read_all(out) == site.object);
    }
}

TEST_CASE("resume: a server that ignores Range requests gets a clean restart", "[robust][resume]") {
    Site site;
    const std::string out = site.tmp.file("object.download");
    // Garbage, not a prefix: if it were kept, the result could not equal the object.
    write_all_file(out, std::string(700 * 1000, 'z'));
    net::CurlFetcher fetcher;
    fetcher.fetch_to_file(site.url("/noranges/object.bin"), out, site.object.size(), true, {});
    CHECK(read_all(out) == site.object);
    const std::string log = site.nginx->access_log();
    INFO(log);
    CHECK(contains(log, "\"GET /noranges/object.bin HTTP/1.1\" 200 " +
                            std::to_string(site.object.size())));
}

TEST_CASE("resume: a partial file at least as long as a changed, shorter object restarts",
          "[robust][resume]") {
    Site site;
    const std::string out = site.tmp.file("object.download");
    // The object was replaced by a shorter one: the range starts past its end (HTTP 416).
    write_all_file(out, site.object + "tail of an older, longer object");
    net::CurlFetcher fetcher;
    fetcher.fetch_to_file(site.url("/object.bin"), out, site.object.size() + 4096, true, {});
    CHECK(read_all(out) == site.object);
    CHECK(contains(site.nginx->access_log(), "\" 416 "));
}

TEST_CASE("retries: bounded, with backoff, only for transient failures", "[robust][retry]") {
    Site site;
    FaultProxy proxy(site.nginx->port(), FaultProxy::fail_first(3));
    const std::string url = site.url("/object.bin", proxy.port());
    const std::string out = site.tmp.file("object.download");

    SECTION("three resets, three retries: success on the fourth connection") {
        net::CurlFetcher fetcher(quick_retries(3));
        fetcher.fetch_to_file(url, out, site.object.size(), true, {});
        CHECK(read_all(out) == site.object);
        CHECK(proxy.connections() == 4);
        CHECK(proxy.applied_total() == 3);
    }
    SECTION("three resets, two retries: a network error after exactly three connections") {
        net::CurlFetcher fetcher(quick_retries(2));
        std::string msg =
            expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, site.object.size()); });
        CHECK(contains(msg, "127.0.0.1"));
        CHECK(proxy.connections() == 3);
    }
    SECTION("retries = 0 means one attempt") {
        net::CurlFetcher fetcher(quick_retries(0));
        expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, site.object.size()); });
        CHECK(proxy.connections() == 1);
    }
    SECTION("a 404 is final, not retried") {
        proxy.set_planner([](uint64_t) { return Fault{}; });
        net::CurlFetcher fetcher(quick_retries(5));
        expect_error(ErrorKind::NotFound,
                     [&] { fetcher.fetch(site.url("/missing.bin", proxy.port()), 4096); });
        CHECK(proxy.connections() == 1);
    }
    SECTION("a body larger than allowed is final, not retried") {
        proxy.set_planner([](uint64_t) { return Fault{}; });
        net::CurlFetcher fetcher(quick_retries(5));
        expect_error(ErrorKind::TooLarge, [&] { fetcher.fetch(url, 1000); });
        CHECK(proxy.connections() == 1);
    }
    SECTION("cuts in the middle: each retry resumes where the last one stopped") {
        proxy.set_planner([](uint64_t index) {
            // Connection i is reset after (i + 1) * 512 KiB of response.
            return index < 3 ? Fault{FaultKind::Cut, (index + 1) * 512 * 1024, 0} : Fault{};
        });
        net::CurlFetcher fetcher(quick_retries(3));
        fetcher.fetch_to_file(url, out, site.object.size(), true, {});
        CHECK(read_all(out) == site.object);
        CHECK(proxy.connections() == 4);
        CHECK(proxy.applied_total() == 3);
        const std::string log = site.nginx->access_log();
        INFO(log);
        CHECK(contains(log, "\" 206 ")); // the later attempts asked for the rest only
    }
}

TEST_CASE("retries: HTTP 503 is retried, delays grow exponentially with jitter, capped",
          "[robust][retry]") {
    const std::string body = pseudo_random_bytes(5000, 3);
    TcpServer server([&](int fd, uint64_t index) {
        if (read_request_head(fd).empty()) return;
        if (index < 2) {
            send_all(fd, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n");
            return;
        }
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body);
    });
    net::CurlFetcher fetcher(quick_retries(4));
    CHECK(fetcher.fetch("http://127.0.0.1:" + std::to_string(server.port()) + "/x", 10000) == body);
    CHECK(server.connections() == 3);

    net::TransportOptions o;
    o.retry_base_ms = 100;
    o.retry_max_ms = 5000;
    for (int attempt = 0; attempt < 40; ++attempt) {
        const long full = std::min(5000L, 100L << std::min(attempt, 20));
        INFO("attempt " << attempt);
        // Jitter keeps between half and all of the exponential delay.
        CHECK(net::retry_delay_ms(o, attempt, 0) == full);
        const long low = net::retry_delay_ms(o, attempt, static_cast<uint32_t>(full / 2));
        CHECK(low == full - full / 2);
        for (uint32_t r : {1u, 77u, 4242u, 0xffffffffu}) {
            const long d = net::retry_delay_ms(o, attempt, r);
            CHECK(d >= full - full / 2);
            CHECK(d <= full);
        }
    }
}

TEST_CASE("slow retrieval: a stalling server is abandoned by the low-speed timeout",
          "[robust][slow]") {
    // The server sends the headers (and a little data, or nothing) and then holds the connection
    // open for up to two minutes. The client must give up on its own, long before.
    std::atomic<int> client_gave_up{0}, server_gave_up{0};
    std::atomic<bool> send_some{true};
    TcpServer server([&](int fd, uint64_t) {
        if (read_request_head(fd).empty()) return;
        if (send_some) {
            send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n");
            // Little data: libcurl averages the speed over a few seconds, so a burst would
            // postpone the verdict by burst / low_speed_bytes seconds.
            send_all(fd, std::string(256, 'a'));
        }
        if (wait_for_client_close(server, fd, 120000))
            ++client_gave_up;
        else
            ++server_gave_up;
    });
    net::TransportOptions o;
    o.low_speed_bytes = 512;
    o.low_speed_time_s = 1;
    net::CurlFetcher fetcher(o);
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/slow";
    TempDir tmp;

    SECTION("stall in the middle of the body") {
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 1 << 20); });
        CHECK(contains(msg, "too slow or stalled"));
        // The partial body of a file download stays for the next attempt to resume.
        const std::string out = tmp.file("slow.download");
        expect_error(ErrorKind::Network,
                     [&] { fetcher.fetch_to_file(url, out, 1 << 20, true, {}); });
        CHECK(file_size(out) == 256);
    }
    SECTION("stall before the response") {
        send_some = false;
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 1 << 20); });
        CHECK(contains(msg, "too slow or stalled"));
    }
    // Wait for the handlers to see the client's close (the TcpServer joins them when destroyed).
    for (int i = 0; i < 200 && client_gave_up + server_gave_up < int(server.connections()); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(client_gave_up == int(server.connections()));
    CHECK(server_gave_up == 0);
}

TEST_CASE("endless data: every body is bounded, in memory and on disk", "[robust][endless]") {
    // The server streams without end (no length, or a length it never honours) up to 1 GiB; the
    // client must hang up right after max_length.
    const uint64_t cap = 1ull << 30;
    std::atomic<uint64_t> sent_total{0};
    std::atomic<bool> announce_length{false};
    TcpServer server([&](int fd, uint64_t) {
        if (read_request_head(fd).empty()) return;
        send_all(fd, announce_length ? "HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n"
                                     : "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
        const std::string chunk = pseudo_random_bytes(64 * 1024, 5);
        uint64_t sent = 0;
        while (sent < cap && !server.stopping() && send_all(fd, chunk))
            sent += chunk.size();
        sent_total += sent;
    });
    const std::string url = "http://127.0.0.1:" + std::to_string(server.port()) + "/endless";
    const uint64_t max_length = 1 << 20;
    net::CurlFetcher fetcher(quick_retries(3));
    TempDir tmp;

    SECTION("into memory") {
        std::string msg =
            expect_error(ErrorKind::TooLarge, [&] { fetcher.fetch(url, max_length); });
        CHECK(contains(msg, "exceeds the allowed length of 1048576 bytes"));
    }
    SECTION("into a file") {
        const std::string out = tmp.file("endless.download");
        expect_error(ErrorKind::TooLarge,
                     [&] { fetcher.fetch_to_file(url, out, max_length, true, {}); });
        CHECK(file_size(out) <= max_length);
    }
    SECTION("an announced length above the bound fails before the body") {
        announce_length = true;
        expect_error(ErrorKind::TooLarge, [&] { fetcher.fetch(url, max_length); });
    }
    // Not retried, and the server could only push what fits in the socket buffers past the bound.
    for (int i = 0; i < 500 && sent_total == 0; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(server.connections() == 1);
    INFO("bytes the endless server managed to send: " << sent_total);
    CHECK(sent_total < 64ull * 1024 * 1024);
}

TEST_CASE("bandwidth cap: a capped download completes intact", "[robust][cap]") {
    Site site;
    net::TransportOptions o;
    o.max_bytes_per_second = 8 * 1024 * 1024;
    net::CurlFetcher fetcher(o);
    const std::string out = site.tmp.file("object.download");
    fetcher.fetch_to_file(site.url("/object.bin"), out, site.object.size(), true, {});
    CHECK(read_all(out) == site.object);
}
