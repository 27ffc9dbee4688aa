// Format 3 headers: the compact binary body in one zstd frame. Round trips, the root over the
// source chunk hashes, and everything a tampered or malformed compact header must be refused for.
#include "agent/bundle/apply_file.h"
#include "agent/bundle/compact_header.h"
#include "agent/bundle/header.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/common/hex.h"
#include "bundle_test_util.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <zstd.h>

using namespace ota;
using namespace ota::bundle;
using ota::test::error_kind_of;
using ota::test::pseudo_random_bytes;
using ota::test::read_all;
using ota::test::TempDir;
using ota::test::write_all_file;

namespace {

std::string hash_of(int i) {
    return sha256_hex(std::to_string(i));
}

// A format 3 model header over every op kind: 5 target chunks of 64 KiB; a source of 6 chunks of
// which the ops read 0, 1 and 5 (2, 3 and 4 are listed); extents forwards, backwards, adjacent.
Header compact_header() {
    Header h;
    h.format = kFormatCompact;
    h.payload_kind = "model";
    h.target_sha256 = hash_of(1);
    SourceImage s;
    s.size = 5 * 65536 + 100;
    s.sha256 = hash_of(2);
    s.chunk_size = 65536;
    for (int i = 0; i < 6; ++i)
        s.chunk_sha256.push_back(hash_of(10 + i));
    s.chunk_root = chunk_hash_root(s.chunk_sha256);
    h.source = s;
    uint64_t data = 0;
    auto add = [&](OpType t, uint64_t len, std::vector<Extent> ex, uint64_t data_len) {
        Operation op;
        op.type = t;
        op.dst_offset = h.target_size;
        op.dst_length = len;
        op.src_extents = std::move(ex);
        if (data_len) {
            op.data_offset = data;
            op.data_length = data_len;
            op.data_sha256 = hash_of(static_cast<int>(100 + h.operations.size()));
            data += data_len;
        }
        h.target_size += len;
        h.max_op_output = std::max(h.max_op_output, len);
        h.operations.push_back(op);
    };
    add(OpType::Zstd, 100000, {}, 1000);
    add(OpType::Zero, 50000, {}, 0);
    add(OpType::Copy, 30, {{65536 + 100, 10}, {65536 + 110, 20}}, 0);      // backwards, adjacent
    add(OpType::ZstdPatch, 70000, {{5 * 65536 + 1, 99}, {0, 65536}}, 700); // forwards, backwards
    add(OpType::Diff, 79970, {{65536, 10}}, 50);
    h.files = {{"models/a.bin", 0, 100, 0644}, {"models/b.bin", 150, 100, 0600}};
    for (int i = 0; i < 5; ++i)
        h.target_chunk_sha256.push_back(hash_of(20 + i));
    h.target_chunk_size = 65536;
    REQUIRE(h.target_size == 300000);
    for (size_t i : {0, 1, 5})
        h.source->chunk_sha256[i].clear(); // read by the ops: the agent computes these
    return h;
}

bool same(const Header& a, const Header& b) {
    if (a.operations.size() != b.operations.size()) return false;
    for (size_t i = 0; i < a.operations.size(); ++i) {
        const Operation &x = a.operations[i], &y = b.operations[i];
        if (x.type != y.type || x.dst_offset != y.dst_offset || x.dst_length != y.dst_length ||
            x.data_offset != y.data_offset || x.data_length != y.data_length ||
            x.data_sha256 != y.data_sha256 || x.src_extents.size() != y.src_extents.size())
            return false;
        for (size_t k = 0; k < x.src_extents.size(); ++k)
            if (x.src_extents[k].offset != y.src_extents[k].offset ||
                x.src_extents[k].length != y.src_extents[k].length)
                return false;
    }
    if (a.files.size() != b.files.size()) return false;
    for (size_t i = 0; i < a.files.size(); ++i)
        if (a.files[i].path != b.files[i].path || a.files[i].offset != b.files[i].offset ||
            a.files[i].length != b.files[i].length || a.files[i].mode != b.files[i].mode)
            return false;
    return a.format == b.format && a.payload_kind == b.payload_kind &&
           a.target_size == b.target_size && a.target_sha256 == b.target_sha256 &&
           a.target_chunk_size == b.target_chunk_size &&
           a.target_chunk_sha256 == b.target_chunk_sha256 && a.max_op_output == b.max_op_output &&
           a.source.has_value() == b.source.has_value() &&
           (!a.source ||
            (a.source->size == b.source->size && a.source->sha256 == b.source->sha256 &&
             a.source->chunk_size == b.source->chunk_size &&
             a.source->chunk_sha256 == b.source->chunk_sha256 &&
             a.source->chunk_root == b.source->chunk_root));
}

std::string compress_without_size(const std::string& body) {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
    ZSTD_inBuffer in{body.data(), body.size(), 0};
    std::string out(ZSTD_compressBound(body.size()) + 64, '\0');
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    REQUIRE(ZSTD_compressStream2(c, &o, &in, ZSTD_e_end) == 0);
    ZSTD_freeCCtx(c);
    out.resize(o.pos);
    return out;
}

} // namespace

TEST_CASE("format 3 headers round trip byte for byte", "[bundle]") {
    const Header h = compact_header();
    REQUIRE_NOTHROW(validate_header(h));
    const std::string bytes = header_bytes(h);
    CHECK(is_compact_header(bytes));
    const Header parsed = parse_header(bytes);
    CHECK(same(parsed, h));
    CHECK(header_bytes(parsed) == bytes);
    // Raw hashes: the body is 32 bytes per hash (5 target chunks, 3 listed source chunks, the
    // root, target and source hashes, 3 blobs) plus a few bytes per op and file.
    CHECK(compact_body(h).size() < 15 * 32 + 120);
    Header as_json = h; // the same header in format 2
    as_json.format = kFormatChunkHashes;
    as_json.source->chunk_root.clear();
    for (size_t i : {0, 1, 5})
        as_json.source->chunk_sha256[i] = hash_of(10 + static_cast<int>(i));
    CHECK(bytes.size() < header_to_json(as_json).size() / 2);

    SECTION("a single target chunk is the whole image: its hash is not repeated") {
        Header one;
        one.format = kFormatCompact;
        one.target_size = 1000;
        one.target_sha256 = hash_of(3);
        one.target_chunk_size = 65536;
        one.target_chunk_sha256 = {hash_of(3)};
        Operation z;
        z.type = OpType::Zero;
        z.dst_length = 1000;
        one.operations = {z};
        one.max_op_output = 1000;
        const std::string b = header_bytes(one);
        CHECK(compact_body(one).size() < 32 + 16);
        CHECK(same(parse_header(b), one));
    }
    SECTION("an empty image") {
        Header empty;
        empty.format = kFormatCompact;
        empty.target_sha256 = sha256_hex("");
        empty.target_chunk_size = 65536;
        CHECK(same(parse_header(header_bytes(empty)), empty));
    }
}

TEST_CASE("format 3 source chunk lists: only the unread chunks, summed up by the root",
          "[bundle]") {
    std::string msg;
    SECTION("a hash listed for a chunk an op reads") {
        Header h = compact_header();
        h.source->chunk_sha256[1] = hash_of(11);
        CHECK(error_kind_of([&] { validate_header(h); }, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("source.chunk_sha256[1] must be left out"));
        // On the wire it is a hash too many: bytes after the end of the body.
        CHECK(error_kind_of([&] { parse_header(compress_compact_body(compact_body(h))); }, &msg) ==
              ErrorKind::Malformed);
    }
    SECTION("no hash for a chunk no op reads") {
        Header h = compact_header();
        h.source->chunk_sha256[3].clear();
        CHECK(error_kind_of([&] { validate_header(h); }, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("source.chunk_sha256[3] must be listed"));
        CHECK(error_kind_of([&] { parse_header(compress_compact_body(compact_body(h))); }, &msg) ==
              ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("ends inside source.chunk_sha256"));
    }
    SECTION("a root outside format 3") {
        Header h = compact_header();
        h.format = kFormatChunkHashes;
        for (size_t i : {0, 1, 5})
            h.source->chunk_sha256[i] = hash_of(10 + static_cast<int>(i));
        CHECK(error_kind_of([&] { validate_header(h); }, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("source.chunk_root needs format 3"));
    }
    SECTION("the root is the SHA-256 of the raw chunk hashes, in order") {
        std::string raw;
        for (int i = 0; i < 3; ++i) {
            const std::vector<uint8_t> b = from_hex(hash_of(i));
            raw.append(b.begin(), b.end());
        }
        CHECK(chunk_hash_root({hash_of(0), hash_of(1), hash_of(2)}) == sha256_hex(raw));
        CHECK(chunk_hash_root({hash_of(1), hash_of(0), hash_of(2)}) != sha256_hex(raw));
    }
}

TEST_CASE("a malformed compact header is refused with a specific error", "[bundle]") {
    const std::string body = compact_body(compact_header());
    std::string msg;
    auto refused = [&](const std::string& bytes) {
        return error_kind_of([&] { parse_header(bytes); }, &msg);
    };
    SECTION("a byte after the body") {
        CHECK(refused(compress_compact_body(body + '\0')) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("after the end of the header body"));
    }
    SECTION("a truncated body") {
        for (size_t n : {size_t(0), size_t(1), size_t(40), body.size() / 2, body.size() - 1})
            CHECK(refused(compress_compact_body(body.substr(0, n))) == ErrorKind::Malformed);
    }
    SECTION("a varint longer than needed") {
        std::string padded = body;
        padded.replace(0, 1, "\x83\x00", 2); // format 3 in two bytes
        CHECK(refused(compress_compact_body(padded)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("not in canonical form"));
    }
    SECTION("an unknown format, payload kind or op type") {
        std::string f = body;
        f[0] = 4;
        CHECK(refused(compress_compact_body(f)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("format 4 is not supported"));
        std::string k = body;
        k[1] = 2;
        CHECK(refused(compress_compact_body(k)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("payload_kind 2"));
    }
    SECTION("counts beyond the bounds or the body are refused before allocating") {
        Header h;
        h.format = kFormatCompact;
        h.target_sha256 = sha256_hex("");
        h.target_chunk_size = 65536;
        std::string b = compact_body(h);
        // The body ends with: max_op_output 0, op count 0, file count 0.
        REQUIRE(b.substr(b.size() - 2) == std::string(2, '\0'));
        std::string many_ops = b.substr(0, b.size() - 2) + "\x80\x80\x40" + '\0'; // 2^20 ops
        CHECK(refused(compress_compact_body(many_ops)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("ends inside operation count"));
        std::string too_many = b.substr(0, b.size() - 2) + "\x81\x80\x40" + '\0'; // 2^20 + 1
        CHECK(refused(compress_compact_body(too_many)) == ErrorKind::TooLarge);
        std::string huge = b.substr(0, b.size() - 2) + std::string(9, '\xff') + "\x02" + '\0';
        CHECK(refused(compress_compact_body(huge)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("does not fit 64 bits"));
    }
    SECTION("anything but one zstd frame declaring its size") {
        const std::string frame = compress_compact_body(body);
        CHECK(refused(frame + frame) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("exactly one zstd frame"));
        CHECK(refused(frame.substr(0, frame.size() - 1)) == ErrorKind::Malformed);
        CHECK(refused(compress_without_size(body)) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("declare its content size"));
        CHECK(refused(compress_compact_body(std::string((16 << 20) + 1, '\0'))) ==
              ErrorKind::TooLarge);
    }
    SECTION("format 3 in JSON") {
        CHECK(refused("{\"format\":3}") == ErrorKind::Malformed);
    }
}

TEST_CASE("a tampered compact header is refused: by the signed hash, else by each blob's hash",
          "[bundle]") {
    TempDir dir;
    const std::string img = pseudo_random_bytes(3 << 16, 41);
    write_all_file(dir.file("image"), img);
    FullBundleOptions o;
    o.chunk_size = 65536;
    o.zstd_level = 3;
    o.threads = 2;
    o.target_chunk_size = 65536;
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), o);
    REQUIRE(info.header.format == kFormatCompact);
    const std::string bundle = read_all(dir.file("bundle"));
    const std::string header = bundle.substr(kPreambleSize, info.header_length);
    const std::string blobs = bundle.substr(kPreambleSize + info.header_length);

    // Op 1's blob hash changed, the header re-made around it: a well-formed header that lies.
    Header lie = parse_header(header);
    lie.operations[1].data_sha256 = hash_of(7);
    const std::string tampered = header_bytes(lie);
    std::string pre(kMagic, kMagic + 8);
    for (int i = 0; i < 8; ++i)
        pre += static_cast<char>(tampered.size() >> (8 * i));
    write_all_file(dir.file("tampered"), pre + tampered + blobs);

    std::string msg;
    CHECK(error_kind_of([&] {
              BundleFile::open(dir.file("tampered"), info.header_sha256, info.header_length);
          }) == ErrorKind::HashMismatch);
    // Offline, where nothing signed names the header: op 1's blob fails its hash and nothing of
    // op 1 is written (op 0 is, and verified).
    write_all_file(dir.file("out"), std::string(img.size(), '\x33'));
    CHECK(apply_bundle_file(dir.file("tampered"), nullptr, dir.file("out"), &msg) != 0);
    CHECK_THAT(msg, Catch::Contains("blob of operation 1"));
    const std::string out = read_all(dir.file("out"));
    CHECK(out.substr(65536, 65536) == std::string(65536, '\x33'));
    // The untouched bundle installs.
    CHECK(apply_bundle_file(dir.file("bundle"), nullptr, dir.file("good"), &msg) == 0);
    CHECK(read_all(dir.file("good")) == img);
}
