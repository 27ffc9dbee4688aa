// Finding deflate streams inside an image: gzip members, zip members, zlib streams; headers over
// data that does not decompress, or whose check value is wrong, are not streams.
#include "agent/deflate/stream_locator.h"
#include "deflate_test_util.h"

#include <catch2/catch.hpp>

using namespace ota;
using namespace ota::deflate;
using namespace ota::test;

namespace {

void le32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s.push_back(static_cast<char>(v >> (8 * i)));
}
void le16(std::string& s, uint32_t v) {
    s.push_back(static_cast<char>(v));
    s.push_back(static_cast<char>(v >> 8));
}
uint32_t crc(const std::string& d) {
    return static_cast<uint32_t>(
        crc32(crc32(0, Z_NULL, 0), bytes_of(d), static_cast<uInt>(d.size())));
}

std::string gzip_member(const std::string& data, const std::string& name) {
    std::string m("\x1f\x8b\x08\x08\0\0\0\0\0\x03", 10);
    m += name + '\0';
    m += zlib_deflate(data, 9);
    le32(m, crc(data));
    le32(m, static_cast<uint32_t>(data.size()));
    return m;
}

std::string zip_member(const std::string& data, const std::string& name, bool descriptor) {
    std::string m("PK\x03\x04\x14\0", 6);
    le16(m, descriptor ? 8 : 0);
    le16(m, 8); // deflate
    le32(m, 0); // time, date
    const std::string body = zlib_deflate(data, 6);
    le32(m, descriptor ? 0 : crc(data));
    le32(m, descriptor ? 0 : static_cast<uint32_t>(body.size()));
    le32(m, descriptor ? 0 : static_cast<uint32_t>(data.size()));
    le16(m, static_cast<uint32_t>(name.size()));
    le16(m, 0);
    m += name + body;
    if (descriptor) {
        le32(m, 0x08074b50);
        le32(m, crc(data));
        le32(m, static_cast<uint32_t>(body.size()));
        le32(m, static_cast<uint32_t>(data.size()));
    }
    return m;
}

} // namespace

TEST_CASE("gzip, zip and zlib streams are found where they are, false headers are not") {
    const std::string a = sample_data(30000, 31), b = sample_data(20000, 32),
                      c = sample_data(25000, 33), d = sample_data(10000, 34);
    std::string image = pseudo_random_bytes(3000, 35);
    // A gzip header over garbage, and one over a valid stream with a wrong CRC.
    image += std::string("\x1f\x8b\x08\0\0\0\0\0\0\x03", 10) + pseudo_random_bytes(500, 36);
    std::string bad_crc = gzip_member(a, "x");
    bad_crc[bad_crc.size() - 6] ^= 1;
    image += bad_crc;
    const uint64_t gz = image.size();
    image += gzip_member(a, "kernel.bin");
    image += pseudo_random_bytes(777, 37);
    const uint64_t zip1 = image.size();
    image += zip_member(b, "lib/one.so", false);
    const uint64_t zip2 = image.size();
    image += zip_member(c, "lib/two.so", true);
    image += pseudo_random_bytes(100, 38);
    const uint64_t zl = image.size();
    image += zlib_deflate(d, 6, 15); // zlib wrapper
    image += pseudo_random_bytes(2000, 39);

    const auto found = locate_deflate_streams(bytes_of(image), image.size());
    REQUIRE(found.size() == 4);
    REQUIRE(found[0].wrapper == Wrapper::Gzip);
    REQUIRE(found[0].wrapper_offset == gz);
    REQUIRE(found[0].offset == gz + 10 + 11);
    REQUIRE(found[0].name == "kernel.bin");
    REQUIRE(found[0].u_size == a.size());
    REQUIRE(found[0].length == zlib_deflate(a, 9).size());
    REQUIRE(found[1].wrapper == Wrapper::Zip);
    REQUIRE(found[1].wrapper_offset == zip1);
    REQUIRE(found[1].name == "lib/one.so");
    REQUIRE(found[2].wrapper_offset == zip2);
    REQUIRE(found[2].name == "lib/two.so");
    REQUIRE(found[2].u_size == c.size());
    REQUIRE(found[3].wrapper == Wrapper::Zlib);
    REQUIRE(found[3].offset == zl + 2);
    REQUIRE(found[3].u_size == d.size());
    for (const auto& s : found)
        REQUIRE(zlib_inflate(image.substr(s.offset, s.length)).size() == s.u_size);
}

TEST_CASE("concatenated gzip members are separate streams") {
    const std::string data = sample_data(50000, 40);
    const std::string image = gnu_gzip(data, 9) + gnu_gzip(data.substr(1000), 1);
    const auto found = locate_deflate_streams(bytes_of(image), image.size());
    REQUIRE(found.size() == 2);
    REQUIRE(found[0].u_size == data.size());
    REQUIRE(found[1].u_size == data.size() - 1000);
    REQUIRE(found[1].wrapper_offset == found[0].offset + found[0].length + 8);
}
