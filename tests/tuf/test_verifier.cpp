// The verifier's building blocks without a network: signature counting, hashes, parsing rules,
// path patterns, percent-encoding and succinct hash-bin role names.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"
#include "agent/tuf/metadata.h"
#include "agent/tuf/path_pattern.h"
#include "agent/tuf/trusted_set.h"
#include "agent/tuf/updater.h"
#include "manifests/publisher/repository.h"
#include "tuf/repo_sim.h"

#include <catch2/catch.hpp>
#include <cstdio>

using namespace ota;
using namespace ota::test;
using namespace ota::tuf;

namespace {

Json body_of(const std::string& type) {
    return Json{{"_type", type},
                {"spec_version", "1.0.31"},
                {"version", 1},
                {"expires", expires_in_days(10)},
                {"targets", Json::object()}};
}

std::map<std::string, Key> keys_for(const std::vector<std::pair<std::string, KeyPtr>>& ids) {
    std::map<std::string, Key> out;
    for (const auto& [id, k] : ids)
        out[id] = Key{k->keytype(), k->scheme(), k->tuf_public_key()};
    return out;
}

Envelope envelope(const Json& body, const Json& signatures) {
    Json env{{"signed", body}, {"signatures", signatures}};
    return parse_envelope(env.dump(), body.at("_type"));
}

Json sig(const std::string& keyid, const SigningKey& k, const Json& body) {
    return Json{{"keyid", keyid}, {"sig", to_hex(k.sign(canonical_json(body)))}};
}

} // namespace

TEST_CASE("threshold counting: distinct valid keys only") {
    KeyPtr a = new_key(), b = new_key();
    Json body = body_of("targets");
    auto keys = keys_for({{"a", a}, {"b", b}, {"a-again", a}});
    RoleKeys role{{"a", "b", "a-again"}, 2};
    SECTION("two different keys meet threshold 2") {
        auto env = envelope(body, Json::array({sig("a", *a, body), sig("b", *b, body)}));
        CHECK(count_valid_signatures(env, keys, role) == 2);
        CHECK_NOTHROW(verify_threshold(env, keys, role, "t"));
    }
    SECTION("a keyid listed twice in signatures is malformed, before any counting") {
        for (const Json& twice :
             {Json::array({sig("a", *a, body), sig("a", *a, body)}),
              Json::array({sig("a", *a, body), sig("b", *b, body), sig("a", *a, body)}),
              Json::array({Json{{"keyid", "a"}, {"sig", "00"}}, sig("a", *a, body)})}) {
            auto env = envelope(body, twice);
            auto kind_of = [&](auto&& call) {
                try {
                    call();
                } catch (const Error& e) {
                    return std::string(error_kind_name(e.kind()));
                }
                return std::string("accepted");
            };
            CHECK(kind_of([&] { verify_threshold(env, keys, role, "t"); }) == "malformed");
            CHECK(kind_of([&] { count_valid_signatures(env, keys, role); }) == "malformed");
            CHECK(kind_of([&] {
                      verify_threshold(env, keys, RoleKeys{{"a"}, 1}, "t");
                  }) == "malformed");
        }
    }
    SECTION("one key under two keyids counts once") {
        auto alone = envelope(body, Json::array({sig("a-again", *a, body)}));
        CHECK(count_valid_signatures(alone, keys, role) == 1); // the second id does verify
        auto env = envelope(body, Json::array({sig("a", *a, body), sig("a-again", *a, body)}));
        CHECK(count_valid_signatures(env, keys, role) == 1);
    }
    SECTION("signatures of keys outside the role, unknown keyids and empty sigs are ignored") {
        RoleKeys only_b{{"b"}, 1};
        auto env = envelope(
            body, Json::array({sig("a", *a, body), Json{{"keyid", "nobody"}, {"sig", "00"}},
                               Json{{"keyid", "b"}, {"sig", ""}}}));
        CHECK(count_valid_signatures(env, keys, only_b) == 0);
    }
    SECTION("a signature over other content does not count") {
        Json other = body;
        other["version"] = 2;
        auto env = envelope(body, Json::array({sig("a", *a, other), sig("b", *b, body)}));
        CHECK(count_valid_signatures(env, keys, role) == 1);
    }
}

TEST_CASE("RSA-PSS and ECDSA keys both verify through the same path - schemes are not mixed") {
    KeyPtr rsa = new_key(kSchemeRsaPss), ec = new_key();
    Json body = body_of("targets");
    std::map<std::string, Key> keys{{"r", Key{"rsa", kSchemeRsaPss, rsa->public_pem()}},
                                    {"e", Key{"ecdsa", kSchemeEcdsaP256, ec->public_pem()}},
                                    {"wrong", Key{"rsa", kSchemeEcdsaP256, rsa->public_pem()}}};
    auto env = envelope(
        body, Json::array({sig("r", *rsa, body), sig("e", *ec, body), sig("wrong", *rsa, body)}));
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"r"}, 1}) == 1);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"e"}, 1}) == 1);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"wrong"}, 1}) == 0);
}

TEST_CASE("Ed25519 keys verify through the same path; keytype and scheme must fit together") {
    KeyPtr ed = new_key(kSchemeEd25519), ec = new_key();
    Json body = body_of("targets");
    std::string upper = ed->tuf_public_key();
    for (auto& c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::map<std::string, Key> keys{
        {"ed", Key{"ed25519", kSchemeEd25519, ed->tuf_public_key()}},
        {"ED", Key{"ed25519", kSchemeEd25519, upper}}, // the same key in upper case
        {"ed-as-ecdsa", Key{"ecdsa", kSchemeEd25519, ed->tuf_public_key()}},
        {"ec-as-ed", Key{"ed25519", kSchemeEcdsaP256, ec->tuf_public_key()}},
        {"ec", Key{"ecdsa-sha2-nistp256", kSchemeEcdsaP256, ec->tuf_public_key()}}};
    auto env = envelope(body, Json::array({sig("ed", *ed, body), sig("ED", *ed, body),
                                           sig("ed-as-ecdsa", *ed, body),
                                           sig("ec-as-ed", *ec, body), sig("ec", *ec, body)}));
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ed"}, 1}) == 1);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ED"}, 1}) == 1);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ed", "ED"}, 1}) == 1); // one key
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ed-as-ecdsa"}, 1}) == 0);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ec-as-ed"}, 1}) == 0);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ec"}, 1}) == 1);
    CHECK(count_valid_signatures(env, keys, RoleKeys{{"ed", "ED", "ec"}, 1}) == 2);
}

TEST_CASE("lengths and hashes: sha256 and sha512 checked, unknown algorithms refused") {
    const std::string data = "payload";
    CHECK_NOTHROW(verify_length_and_hashes(data, 7, {{"sha256", sha256_hex(data)}}, "x"));
    CHECK_NOTHROW(
        verify_length_and_hashes(data, std::nullopt, {{"sha512", sha512_hex(data)}}, "x"));
    auto kind_of = [&](std::optional<uint64_t> len, std::map<std::string, std::string> h) {
        try {
            verify_length_and_hashes(data, len, h, "x");
        } catch (const Error& e) {
            return std::string(error_kind_name(e.kind()));
        }
        return std::string("ok");
    };
    CHECK(kind_of(8, {}) == error_kind_name(ErrorKind::HashMismatch));
    CHECK(kind_of(7, {{"sha512", sha512_hex("other")}}) ==
          error_kind_name(ErrorKind::HashMismatch));
    CHECK(kind_of(7, {{"sha256", sha256_hex(data)}, {"blake2b", "00"}}) ==
          error_kind_name(ErrorKind::Unsupported));
}

TEST_CASE("parsing is strict about shape and _type") {
    Json body = body_of("targets");
    Json good{{"signed", body}, {"signatures", Json::array()}};
    CHECK_NOTHROW(parse_envelope(good.dump(), "targets"));
    CHECK_THROWS_AS(parse_envelope(good.dump(), "snapshot"), Error);
    Json bad = good;
    bad["signed"]["version"] = 0;
    CHECK_THROWS_AS(parse_envelope(bad.dump(), "targets"), Error);
    bad = good;
    bad["signed"]["version"] = "1";
    CHECK_THROWS_AS(parse_envelope(bad.dump(), "targets"), Error);
    bad = good;
    bad["signed"]["expires"] = "2030-01-01 00:00:00";
    CHECK_THROWS_AS(parse_envelope(bad.dump(), "targets"), Error);
    bad = good;
    bad["signed"]["spec_version"] = "2.0.0";
    CHECK_THROWS_AS(parse_envelope(bad.dump(), "targets"), Error);
    bad = good;
    bad["signed"]["float"] = 1.5; // not representable in canonical JSON
    CHECK_THROWS_AS(parse_envelope(bad.dump(), "targets"), Error);
    CHECK_THROWS_AS(parse_envelope("[]", "targets"), Error);
}

TEST_CASE("delegations: exactly one of paths and path_hash_prefixes - reserved names refused") {
    Json body = body_of("targets");
    Json role{{"name", "a"},
              {"keyids", Json::array()},
              {"threshold", 1},
              {"terminating", false},
              {"paths", Json::array({"*"})}};
    body["delegations"] = Json{{"keys", Json::object()}, {"roles", Json::array({role})}};
    auto parse = [](const Json& b) {
        return parse_targets(
            parse_envelope(Json{{"signed", b}, {"signatures", Json::array()}}.dump(), "targets"));
    };
    CHECK(parse(body).delegations->roles.size() == 1);
    Json both = body;
    both["delegations"]["roles"][0]["path_hash_prefixes"] = Json::array({"ab"});
    CHECK_THROWS_AS(parse(both), Error);
    Json neither = body;
    neither["delegations"]["roles"][0].erase("paths");
    CHECK_THROWS_AS(parse(neither), Error);
    Json reserved = body;
    reserved["delegations"]["roles"][0]["name"] = "root";
    CHECK_THROWS_AS(parse(reserved), Error);
    Json twice = body;
    twice["delegations"]["roles"].push_back(role);
    CHECK_THROWS_AS(parse(twice), Error);
    Json dup_keyid = body;
    dup_keyid["delegations"]["roles"][0]["keyids"] = Json::array({"k", "k"});
    CHECK_THROWS_AS(parse(dup_keyid), Error);
}

TEST_CASE("path patterns: * and ? within one segment, segments must align") {
    CHECK(path_pattern_matches("*", "file.txt"));
    CHECK_FALSE(path_pattern_matches("*", "dir/file.txt"));
    CHECK(path_pattern_matches("*/*", "dir/file.txt"));
    CHECK(path_pattern_matches("releases/*/*.zip", "releases/y/y_v1.zip"));
    CHECK_FALSE(path_pattern_matches("releases/*/*.zip", "releases/y/y_v1.tar"));
    CHECK(path_pattern_matches("file-?.bin", "file-1.bin"));
    CHECK_FALSE(path_pattern_matches("file-?.bin", "file-12.bin"));
    CHECK(path_pattern_matches("*.md", ".md"));
    CHECK(path_pattern_matches("a*b*c", "aXXbYYc"));
    CHECK_FALSE(path_pattern_matches("a*b*c", "aXXbYY"));
    CHECK(path_pattern_matches("exact/name", "exact/name"));
    CHECK_FALSE(path_pattern_matches("exact/name", "exact/nam"));
}

TEST_CASE("path patterns: bracket expressions and escapes as python-tuf's fnmatch has them") {
    // The expected results are those of Python's fnmatch.fnmatchcase, python-tuf's matcher.
    struct Case {
        const char* pattern;
        const char* path;
        bool match;
    };
    const Case cases[] = {
        {"file-[abc].bin", "file-b.bin", true},
        {"file-[abc].bin", "file-d.bin", false},
        {"v[0-9][0-9]/*", "v42/x", true},
        {"v[0-9]/*", "v4a/x", false},
        {"[!a]*", "beta", true},
        {"[!a]*", "alpha", false},
        {"[]]x", "]x", true},
        {"[!]]x", "ax", true},
        {"[!]]x", "]x", false},
        {"[a-]", "-", true},
        {"[-a]", "-", true},
        {"[z-a]", "m", false},
        {"[a-c-e]", "d", false},
        {"[a-c-e]", "-", true},
        {"[ab", "[ab", true},
        {"[ab", "a", false},
        {"[!]", "[!]", true},
        {"[]", "[]", true},
        {"[^a]", "^", true},
        {"[^a]", "b", false},
        {"[[]", "[", true},
        {"[*]", "*", true},
        {"[*]", "a", false},
        {"[?]", "a", false},
        {"a\\b", "a\\b", true},
        {"a\\*", "a\\zz", true},
        {"a\\*", "a*x", false},
        {"d/[a-c]*/f", "d/beta/f", true},
        {"d/[a-c]*/f", "d/delta/f", false},
        {"[/]", "/", false},
        {"caf?", "caf\xc3\xa9", true},
        {"[\xc3\xa9]", "\xc3\xa9", true},
        {"[\xc3\xa0-\xc3\xbf]x", "\xc3\xa9x", true},
        {"caf?", "caf\xc3", true},
    };
    for (const auto& c : cases) {
        INFO(c.pattern << " ~ " << c.path);
        CHECK(path_pattern_matches(c.pattern, c.path) == c.match);
    }
    // Many stars against a long segment: no exponential backtracking (this returns at once).
    std::string many_stars;
    for (int i = 0; i < 40; ++i)
        many_stars += "*a";
    CHECK_FALSE(path_pattern_matches(many_stars + "b", std::string(200, 'a')));
    CHECK(path_pattern_matches(many_stars, std::string(200, 'a')));
}

TEST_CASE("path_hash_prefixes match on the hex SHA-256 of the target path") {
    DelegatedRole r;
    const std::string digest = sha256_hex("some/target");
    r.path_hash_prefixes = std::vector<std::string>{"ffff", digest.substr(0, 3)};
    CHECK(r.matches("some/target"));
    r.path_hash_prefixes = std::vector<std::string>{digest.substr(0, 2) == "00" ? "01" : "00"};
    CHECK_FALSE(r.matches("some/target"));
}

TEST_CASE("percent-encoding of role names: everything but unreserved characters") {
    CHECK(percent_encode("role-A_1.x~") == "role-A_1.x~");
    CHECK(percent_encode("/delegatedrole") == "%2Fdelegatedrole");
    CHECK(percent_encode("../x") == "..%2Fx");
    CHECK(percent_encode("?#% ") == "%3F%23%25%20");
    CHECK(percent_encode("\xc3\xa9") == "%C3%A9");
    CHECK(role_filename("a/b") == "a%2Fb.json");
}

TEST_CASE("succinct hash bins: role names from the first bits of the path hash") {
    SuccinctRoles s;
    s.name_prefix = "bin";
    s.bit_length = 8;
    const std::string digest = sha256_hex("file.txt");
    CHECK(s.role_for_target("file.txt") == "bin-" + digest.substr(0, 2));
    CHECK(s.is_delegated_role("bin-00"));
    CHECK(s.is_delegated_role("bin-ff"));
    CHECK_FALSE(s.is_delegated_role("bin-100"));
    CHECK_FALSE(s.is_delegated_role("bin-f"));
    CHECK_FALSE(s.is_delegated_role("other-00"));
    s.bit_length = 5; // 32 bins, names of two hex digits, highest "1f"
    CHECK(s.is_delegated_role("bin-1f"));
    CHECK_FALSE(s.is_delegated_role("bin-20"));
    uint32_t first = static_cast<uint32_t>(std::stoul(digest.substr(0, 8), nullptr, 16));
    char expected[8];
    std::snprintf(expected, sizeof expected, "%02x", first >> 27);
    CHECK(s.role_for_target("file.txt") == std::string("bin-") + expected);
}

TEST_CASE("expiry timestamps parse only in the specification's form") {
    CHECK(parse_expiry("1970-01-02T00:00:00Z") == 86400);
    CHECK(format_expiry(86400) == "1970-01-02T00:00:00Z");
    // Past the 32-bit time_t of armhf (January 2038): metadata routinely expires later.
    CHECK(parse_expiry("2038-01-19T03:14:08Z") == 2147483648LL);
    CHECK(parse_expiry("2100-01-01T00:00:00Z") == 4102444800LL);
    CHECK(format_expiry(4102444800LL) == "2100-01-01T00:00:00Z");
    CHECK(parse_expiry("2024-02-29T23:59:59Z") == 1709251199LL);
    CHECK(format_expiry(1709251199LL) == "2024-02-29T23:59:59Z");
    CHECK(format_expiry(-1) == "1969-12-31T23:59:59Z");
    CHECK_THROWS_AS(parse_expiry("1970-01-02T00:00:00"), Error);
    CHECK_THROWS_AS(parse_expiry("1970-01-02T00:00:00+01:00"), Error);
    CHECK_THROWS_AS(parse_expiry("1970-13-02T00:00:00Z"), Error);
}

TEST_CASE("the trusted root must be signed by its own threshold") {
    TestHttpServer server;
    RepoSim repo(server);
    CHECK_NOTHROW(TrustedSet(repo.initial_root, 0));
    repo.signers["root"] = {new_key()};
    repo.publish_root();
    CHECK_THROWS_AS(TrustedSet(repo.published["root"], 0), Error);
}
