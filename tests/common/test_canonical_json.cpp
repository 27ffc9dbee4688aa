// Canonical JSON as securesystemslib defines it: the exact bytes signatures cover.
#include "agent/common/canonical_json.h"
#include "agent/common/error.h"

#include <catch2/catch.hpp>

using namespace ota;

TEST_CASE("canonical JSON: sorted keys, no whitespace") {
    Json v = Json::parse(R"({"b": 1, "a": {"z": [3, 2, 1], "y": null}, "A": true, "_": false})");
    CHECK(canonical_json(v) == R"({"A":true,"_":false,"a":{"y":null,"z":[3,2,1]},"b":1})");
}

TEST_CASE("canonical JSON: only quote and backslash are escaped - everything else is raw bytes") {
    Json v = Json::object();
    v["quote\"key"] = "back\\slash";
    v["newline"] = "a\nb\tc";
    v["utf8"] = "\xc3\xa9\xe2\x82\xac";
    v["slash"] = "a/b";
    CHECK(canonical_json(v) == "{\"newline\":\"a\nb\tc\",\"quote\\\"key\":\"back\\\\slash\","
                               "\"slash\":\"a/b\",\"utf8\":\"\xc3\xa9\xe2\x82\xac\"}");
}

TEST_CASE("canonical JSON: keys sort by code point (byte order for UTF-8)") {
    Json v = Json::object();
    v["\xc3\xa9"] = 1; // U+00E9
    v["z"] = 2;
    v["Z"] = 3;
    v["10"] = 4;
    v["9"] = 5;
    CHECK(canonical_json(v) == "{\"10\":4,\"9\":5,\"Z\":3,\"z\":2,\"\xc3\xa9\":1}");
}

TEST_CASE("canonical JSON: integers, negative and large, but no floats") {
    CHECK(canonical_json(Json::parse("[0, -1, 18446744073709551615, -9223372036854775808]")) ==
          "[0,-1,18446744073709551615,-9223372036854775808]");
    CHECK_THROWS_AS(canonical_json(Json::parse("{\"a\": 1.5}")), Error);
    CHECK_THROWS_AS(canonical_json(Json::parse("[1e3]")), Error);
    CHECK(canonical_json(Json::parse("[]")) == "[]");
    CHECK(canonical_json(Json::parse("{}")) == "{}");
    CHECK(canonical_json(Json::parse("\"\"")) == "\"\"");
}

TEST_CASE("canonical JSON: hostile nesting depth is refused, malformed text is a clear error") {
    std::string deep(200, '[');
    deep += std::string(200, ']');
    CHECK_THROWS_AS(canonical_json(Json::parse(deep)), Error);
    try {
        parse_json("{\"a\":", "test document");
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::Malformed);
        CHECK(std::string(e.what()).find("test document") != std::string::npos);
    }
}
