// HTTPS against a real nginx on 127.0.0.1 with TLS and client-certificate verification; the
// certificates (two CAs, a server, a device and a rogue server) are made by the test with the
// openssl CLI. Checks: mutual TLS works; an unknown CA, a missing client certificate and a wrong
// pinned key are refused (and not retried); a TLS 1.1-only server is refused; the real ota-agent
// updates over mutual TLS end to end.
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/curl_fetcher.h"
#include "robust/fault_proxy.h"
#include "slice/slice_fixture.h"
#include "support/test_support.h"

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

// A throwaway PKI: server CA -> server certificate for IP 127.0.0.1, device CA -> client
// certificate, and an unrelated rogue CA. All ECDSA P-256.
struct Pki {
    std::string dir;
    explicit Pki(const std::string& directory) : dir(directory) {
        const std::string script = R"(set -e
cd "$1"
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key \
         -out $1.pem -days 3 -subj "/CN=$2" 2>/dev/null; }
leaf() {
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $1.key -out $1.csr \
      -subj "/CN=$3" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=%s\n%s' \
      "$4" "$5" > $1.ext
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem -days 3 \
      -extfile $1.ext 2>/dev/null
}
pin() { openssl x509 -in $1.pem -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64; }
ca server-ca "OTA test server CA"
ca device-ca "OTA test device CA"
ca rogue-ca "Rogue CA"
leaf server server-ca 127.0.0.1 serverAuth "subjectAltName=IP:127.0.0.1"
leaf device device-ca demo-ecu-0001 clientAuth ""
leaf rogue rogue-ca 127.0.0.1 serverAuth "subjectAltName=IP:127.0.0.1"
pin server > server.pin
pin rogue > rogue.pin
)";
        write_all_file(dir + "/make-pki.sh", script);
        std::string output;
        const int status =
            run_command("sh " + quote(dir + "/make-pki.sh") + " " + quote(dir) + " 2>&1", &output);
        INFO(output);
        REQUIRE(status == 0);
    }
    std::string file(const std::string& name) const { return dir + "/" + name; }
    std::string pin(const std::string& name) const {
        std::string b64 = read_all(file(name + ".pin"));
        while (!b64.empty() && (b64.back() == '\n' || b64.back() == '\r'))
            b64.pop_back();
        return "sha256//" + b64;
    }
};

// Made once per test run (the openssl CLI takes seconds on a loaded machine).
const Pki& shared_pki() {
    static TempDir dir;
    static Pki pki(dir.path());
    return pki;
}

// nginx with TLS 1.2/1.3 and a required, verified client certificate, serving `root`.
std::string mutual_tls_server(const Pki& pki, const std::string& root) {
    return "server {\n"
           "    listen 127.0.0.1:@PORT@ ssl;\n"
           "    ssl_certificate " +
           pki.file("server.pem") +
           ";\n"
           "    ssl_certificate_key " +
           pki.file("server.key") +
           ";\n"
           "    ssl_client_certificate " +
           pki.file("device-ca.pem") +
           ";\n"
           "    ssl_verify_client on;\n"
           "    ssl_protocols TLSv1.2 TLSv1.3;\n"
           "    root " +
           root +
           ";\n"
           "    location / { }\n"
           "}\n";
}

net::TransportOptions device_identity(const Pki& pki) {
    net::TransportOptions o;
    o.ca_file = pki.file("server-ca.pem");
    o.client_cert = pki.file("device.pem");
    o.client_key = pki.file("device.key");
    o.connect_timeout_s = 10;
    o.retries = 3;
    o.retry_base_ms = 10;
    return o;
}

// A served directory with two objects, and the PKI, in one temporary directory.
struct TlsSite {
    TempDir tmp;
    const Pki* pki = &shared_pki();
    std::string small = pseudo_random_bytes(1000, 1);
    std::string large = pseudo_random_bytes(1536 * 1024, 2);
    std::unique_ptr<TestNginx> nginx;
    TlsSite() {
        ::chmod(tmp.path().c_str(), 0755); // nginx workers may run as nobody
        run_command("mkdir -p " + quote(tmp.file("www")));
        write_all_file(tmp.file("www/small.bin"), small);
        write_all_file(tmp.file("www/large.bin"), large);
        nginx = std::make_unique<TestNginx>(tmp.file("nginx"),
                                            mutual_tls_server(*pki, tmp.file("www")));
    }
    std::string url(const std::string& name, int port = 0) const {
        return "https://127.0.0.1:" + std::to_string(port ? port : nginx->port()) + "/" + name;
    }
};

// Runs `f`, which must throw ota::Error of `kind`; returns its message.
template <typename F> std::string expect_error(ErrorKind kind, F&& f) {
    try {
        f();
    } catch (const Error& e) {
        INFO("error: " << e.what());
        CHECK(e.kind() == kind);
        return e.what();
    }
    FAIL("no error was raised");
    return "";
}

} // namespace

TEST_CASE("mutual TLS: the right CA and device certificate fetch objects over HTTPS",
          "[robust][tls]") {
    TlsSite site;
    net::CurlFetcher fetcher(device_identity(*site.pki));
    CHECK(fetcher.fetch(site.url("small.bin"), 4096) == site.small);
    const std::string out = site.tmp.file("large.download");
    fetcher.fetch_to_file(site.url("large.bin"), out, site.large.size(), true, {});
    CHECK(read_all(out) == site.large);

    // Resume works over TLS as well: a partial file is completed with a range request.
    write_all_file(out, site.large.substr(0, 500000));
    fetcher.fetch_to_file(site.url("large.bin"), out, site.large.size(), true, {});
    CHECK(read_all(out) == site.large);
    CHECK(contains(site.nginx->access_log(), "\"GET /large.bin HTTP/1.1\" 206 "));

    SECTION("and the pinned key of the right server is accepted") {
        auto o = device_identity(*site.pki);
        o.pinned_public_key = site.pki->pin("server");
        net::CurlFetcher pinned(o);
        CHECK(pinned.fetch(site.url("small.bin"), 4096) == site.small);
    }
}

TEST_CASE("TLS: an unknown CA, a missing client certificate and a wrong pin are refused at once",
          "[robust][tls]") {
    TlsSite site;
    // Count connections through a pass-through proxy: permanent failures must not be retried.
    FaultProxy proxy(site.nginx->port(), [](uint64_t) { return Fault{}; });
    const std::string url = site.url("small.bin", proxy.port());

    SECTION("server certificate not signed by the configured CA") {
        auto o = device_identity(*site.pki);
        o.ca_file = site.pki->file("rogue-ca.pem");
        net::CurlFetcher fetcher(o);
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 4096); });
        CHECK(contains(msg, "TLS verification failed"));
        CHECK(contains(msg, "certificate"));
        CHECK(proxy.connections() == 1);
    }
    SECTION("no client certificate: nginx answers 400") {
        auto o = device_identity(*site.pki);
        o.client_cert.clear();
        o.client_key.clear();
        net::CurlFetcher fetcher(o);
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 4096); });
        CHECK(contains(msg, "HTTP 400"));
        CHECK(proxy.connections() == 1);
        CHECK(contains(site.nginx->error_log(), "client sent no required SSL certificate"));
    }
    SECTION("a client certificate from another CA: nginx answers 400") {
        auto o = device_identity(*site.pki);
        o.client_cert = site.pki->file("rogue.pem");
        o.client_key = site.pki->file("rogue.key");
        net::CurlFetcher fetcher(o);
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 4096); });
        CHECK(contains(msg, "HTTP 400"));
        CHECK(proxy.connections() == 1);
    }
    SECTION("pinned public key of another server") {
        auto o = device_identity(*site.pki);
        o.pinned_public_key = site.pki->pin("rogue");
        net::CurlFetcher fetcher(o);
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(url, 4096); });
        CHECK(contains(msg, "TLS verification failed"));
        CHECK(proxy.connections() == 1);
        // The same server with the right pin, through the same proxy, is fine.
        o.pinned_public_key = site.pki->pin("server");
        CHECK(net::CurlFetcher(o).fetch(url, 4096) == site.small);
    }
    SECTION("plain HTTP to a TLS port is not mistaken for success") {
        net::CurlFetcher fetcher(device_identity(*site.pki));
        std::string http_url = "http://127.0.0.1:" + std::to_string(proxy.port()) + "/small.bin";
        std::string msg = expect_error(ErrorKind::Network, [&] { fetcher.fetch(http_url, 4096); });
        CHECK(contains(msg, "HTTP 400"));
    }
}

TEST_CASE("TLS: a server that only speaks TLS 1.1 is refused", "[robust][tls]") {
    TlsSite site;
    TestNginx old(site.tmp.file("nginx-tls11"), "server {\n"
                                                "    listen 127.0.0.1:@PORT@ ssl;\n"
                                                "    ssl_certificate " +
                                                    site.pki->file("server.pem") +
                                                    ";\n"
                                                    "    ssl_certificate_key " +
                                                    site.pki->file("server.key") +
                                                    ";\n"
                                                    "    ssl_protocols TLSv1.1;\n"
                                                    "    ssl_ciphers DEFAULT:@SECLEVEL=0;\n"
                                                    "    root " +
                                                    site.tmp.file("www") +
                                                    ";\n"
                                                    "    location / { }\n"
                                                    "}\n");
    // The server really does speak TLS 1.1 (a client that allows it gets the object) ...
    std::string output;
    const int status =
        run_command("curl -sS --tlsv1.1 --tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 --cacert " +
                        quote(site.pki->file("server-ca.pem")) + " " +
                        site.url("small.bin", old.port()) + " 2>&1",
                    &output);
    INFO("curl --tlsv1.1 said: " << output.substr(0, 300));
    REQUIRE(status == 0);
    REQUIRE(output == site.small);
    // ... and our fetcher, which requires 1.2 or newer, refuses to talk to it.
    net::CurlFetcher fetcher(device_identity(*site.pki));
    std::string msg = expect_error(ErrorKind::Network,
                                   [&] { fetcher.fetch(site.url("small.bin", old.port()), 4096); });
    CHECK(contains(msg, "127.0.0.1"));
}

TEST_CASE("ota-agent updates over mutual TLS from nginx and refuses a server it cannot verify",
          "[robust][tls]") {
    using namespace ota::test::slice;
    Slice s;
    s.release(s.image(2), 2);
    const std::string v2_sha256 = file_sha256_hex(s.image(2));
    const Pki& pki = shared_pki();
    TestNginx nginx(s.path("nginx-tls"), mutual_tls_server(pki, s.repo_dir()));

    auto write_config = [&](const std::string& name, const Json& transport) {
        Json c = parse_json(read_all(s.config()), "agent.json");
        const std::string base = "https://127.0.0.1:" + std::to_string(nginx.port());
        c["metadata_url"] = base + "/metadata/";
        c["targets_url"] = base + "/targets/";
        c["transport"] = transport;
        write_all_file(s.path(name), c.dump(1) + "\n");
        return s.path(name);
    };
    Json identity{{"ca_file", pki.file("server-ca.pem")},
                  {"client_cert", pki.file("device.pem")},
                  {"client_key", pki.file("device.key")},
                  {"pinned_public_key", pki.pin("server")},
                  {"retries", 2},
                  {"retry_base_ms", 10}};

    // Without the device certificate nginx refuses every request: nothing changes on the ECU.
    Json anonymous = identity;
    anonymous.erase("client_cert");
    anonymous.erase("client_key");
    const DeviceSnapshot before = s.snapshot();
    Result refused = s.agent("update", write_config("anonymous.json", anonymous));
    // (The first run installs the factory root as the trusted root: the same file as the server's.)
    require_rejected(s, refused, "network", "HTTP 400", before, {"root.json"});

    // A rogue CA's server (the wrong trust anchor configured) is refused the same way.
    Json rogue = identity;
    rogue["ca_file"] = pki.file("rogue-ca.pem");
    rogue.erase("pinned_public_key");
    Result untrusted = s.agent("update", write_config("rogue.json", rogue));
    require_rejected(s, untrusted, "network", "TLS verification failed", before, {"root.json"});

    Result update = s.agent("update", write_config("mtls.json", identity));
    INFO(update.output);
    REQUIRE(update.status == 0);
    CHECK(contains(update.output, "slot B verified end to end"));
    REQUIRE(s.sim("boot --dir " + quote(s.ecu_dir())).status == 0);
    Result commit = s.agent("boot-check", s.path("mtls.json"));
    INFO(commit.output);
    REQUIRE(commit.status == 0);
    CHECK(contains(commit.output, "rootfs version 2 committed"));
    CHECK(file_sha256_hex(s.ecu_dir() + "/slot-B.img", static_cast<int64_t>(kImageSize)) ==
          v2_sha256);
    // Every request nginx answered came with a verified device certificate.
    CHECK(contains(nginx.access_log(), "/targets/demo-ecu/"));
}
