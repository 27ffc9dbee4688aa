// Bundle format, writer, reader and streaming installer: real files, real zstd, real SHA-256.
#include "agent/bundle/apply_file.h"
#include "agent/bundle/header.h"
#include "agent/bundle/installer.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "bundle_test_util.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

using namespace ota;
using namespace ota::bundle;
using ota::test::error_kind_of;
using ota::test::pseudo_random_bytes;
using ota::test::read_all;
using ota::test::TempDir;
using ota::test::write_all_file;

namespace {

// "" when equal, else where they first differ (keeps binary data out of test output).
std::string diff_bytes(const std::string& a, const std::string& b) {
    if (a.size() != b.size())
        return "sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return "first difference at byte " + std::to_string(i);
    return "";
}
#define CHECK_BYTES(a, b) CHECK(diff_bytes((a), (b)) == "")

// Runs f and returns the kind of ota::Error it threw; fails the test if it did not throw one.
// An image with random, zero and compressible regions.
std::string mixed_image(size_t size, uint64_t seed) {
    std::string img = pseudo_random_bytes(size, seed);
    for (size_t i = size / 4; i < size / 2; ++i)
        img[i] = 0;
    for (size_t i = size / 2; i < size * 5 / 8; ++i)
        img[i] = static_cast<char>('a' + i % 7);
    return img;
}

FullBundleOptions small_chunks(uint64_t chunk = 64 << 10) {
    FullBundleOptions o;
    o.chunk_size = chunk;
    o.zstd_level = 3;
    o.threads = 2;
    return o;
}

std::string zstd_frame(const std::string& data, const std::string* prefix = nullptr) {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 19);
    if (prefix) ZSTD_CCtx_refPrefix(c, prefix->data(), prefix->size());
    std::string out(ZSTD_compressBound(data.size()), '\0');
    size_t n = ZSTD_compress2(c, out.data(), out.size(), data.data(), data.size());
    ZSTD_freeCCtx(c);
    REQUIRE_FALSE(ZSTD_isError(n));
    out.resize(n);
    return out;
}

struct Installed {
    InstallResult result;
    std::string target_bytes;
};

// Installs `bundle_path` (opened with its own header identity as trusted) into target_path.
InstallResult install(const std::string& bundle_path, const std::string& target_path,
                      const std::string& journal_path, const std::string* source_path = nullptr,
                      InstallOptions options = {}) {
    BundleFile b = BundleFile::open_self_verified(bundle_path);
    auto target = hal::open_block_device(target_path, true);
    std::unique_ptr<hal::BlockDevice> source;
    if (source_path) source = hal::open_block_device(*source_path, false);
    InstallJournal journal(journal_path);
    return install_bundle(b, source.get(), *target, journal, options);
}

// Full round trip of an image through build_full_bundle + install_bundle.
void round_trip(const std::string& image, uint64_t chunk = 64 << 10) {
    TempDir dir;
    write_all_file(dir.file("image"), image);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), small_chunks(chunk));
    CHECK(info.header.target_size == image.size());
    CHECK(info.header.target_sha256 == sha256_hex(image));
    CHECK(info.bundle_length == file_size(dir.file("bundle")));
    CHECK(info.bundle_sha256 == file_sha256_hex(dir.file("bundle")));
    BundleFile b = BundleFile::open(dir.file("bundle"), info.header_sha256, info.header_length);
    CHECK(b.header().operations.size() == info.header.operations.size());
    write_all_file(dir.file("target"), std::string(image.size(), '\x5a'));
    auto target = hal::open_block_device(dir.file("target"), true);
    InstallJournal journal(dir.file("journal"));
    uint64_t last_progress = 0;
    InstallOptions opts;
    opts.progress = [&](uint64_t done, uint64_t total) {
        CHECK(done > last_progress);
        CHECK(total == image.size());
        last_progress = done;
    };
    InstallResult r = install_bundle(b, nullptr, *target, journal, opts);
    CHECK(r.skipped == 0);
    CHECK_BYTES(read_all(dir.file("target")), image);
    CHECK(last_progress == image.size());
    auto state = journal.load();
    REQUIRE(state);
    CHECK(state->complete);
    CHECK(state->next_op == b.header().operations.size());
    // A second run with the same journal only re-verifies.
    InstallResult again = install_bundle(b, nullptr, *target, journal);
    CHECK(again.already_complete);
}

std::string flip_byte(const std::string& path, uint64_t offset) {
    std::string data = read_all(path);
    REQUIRE(offset < data.size());
    data[offset] = static_cast<char>(data[offset] ^ 0x01);
    write_all_file(path, data);
    return data;
}

// A valid header for mutation tests: source, all five op kinds and a file entry.
Header sample_header() {
    Header h;
    h.target_sha256 = std::string(64, 'a');
    h.source = SourceImage{1000, std::string(64, 'b')};
    auto add = [&](OpType t, uint64_t len, std::vector<Extent> ex, uint64_t data_len) {
        Operation op;
        op.type = t;
        op.dst_offset = h.target_size;
        op.dst_length = len;
        op.src_extents = std::move(ex);
        if (data_len) {
            op.data_offset = 0;
            for (auto& o : h.operations)
                op.data_offset += o.data_length;
            op.data_length = data_len;
            op.data_sha256 = std::string(64, 'c');
        }
        h.target_size += len;
        h.max_op_output = std::max(h.max_op_output, len);
        h.operations.push_back(op);
    };
    add(OpType::Zstd, 100, {}, 10);
    add(OpType::Zero, 50, {}, 0);
    add(OpType::Copy, 30, {{0, 10}, {500, 20}}, 0);
    add(OpType::ZstdPatch, 70, {{0, 1000}}, 7);
    add(OpType::Diff, 20, {{100, 100}}, 5);
    h.files = {{"models/a.bin", 0, 100, 0644}, {"models/b.bin", 150, 100, 0600}};
    return h;
}

ErrorKind parse_error_kind(const Header& h, std::string* message = nullptr) {
    return error_kind_of([&] { parse_header(header_to_json(h)); }, message);
}

} // namespace

TEST_CASE("full bundles round trip through the installer", "[bundle]") {
    SECTION("empty image") {
        round_trip("");
    }
    SECTION("one byte") {
        round_trip("x");
    }
    SECTION("tiny") {
        round_trip(pseudo_random_bytes(100, 1));
    }
    SECTION("not a multiple of the chunk size") {
        round_trip(mixed_image(3 * 65536 + 123, 2));
    }
    SECTION("all zeros") {
        round_trip(std::string(1 << 20, '\0'));
    }
    SECTION("random") {
        round_trip(pseudo_random_bytes(1 << 20, 3));
    }
    SECTION("one byte chunks") {
        round_trip(pseudo_random_bytes(300, 4), 1);
    }
    SECTION("default chunk size") {
        round_trip(mixed_image(3 << 20, 5), 1 << 20);
    }
}

TEST_CASE("full bundle ops: zero runs merged, one frame per data chunk", "[bundle]") {
    TempDir dir;
    std::string img(256 << 10, '\0');
    img += pseudo_random_bytes(64 << 10, 9);
    img += std::string(128 << 10, '\0');
    write_all_file(dir.file("image"), img);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), small_chunks());
    const auto& ops = info.header.operations;
    REQUIRE(ops.size() == 3);
    CHECK(ops[0].type == OpType::Zero);
    CHECK(ops[0].dst_length == 256 << 10);
    CHECK(ops[1].type == OpType::Zstd);
    CHECK(ops[2].type == OpType::Zero);
    CHECK(info.header.max_op_output == 256 << 10);
    // The header bytes are canonical: parsing and re-serializing gives the same bytes.
    std::string header = header_bytes(info.header);
    CHECK(header_bytes(parse_header(header)) == header);
    CHECK(sha256_hex(header) == info.header_sha256);
}

TEST_CASE("the header is strict", "[bundle]") {
    std::string msg;
    Header ok = sample_header();
    REQUIRE_NOTHROW(parse_header(header_to_json(ok)));

    SECTION("overlapping dst ranges") {
        Header h = ok;
        h.operations[1].dst_offset -= 1;
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operations[1].dst_offset"));
    }
    SECTION("out of order ops") {
        Header h = ok;
        std::swap(h.operations[0], h.operations[1]);
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
    }
    SECTION("gap in dst ranges") {
        Header h = ok;
        h.operations[4].dst_offset += 1;
        h.target_size += 1;
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operations[4]"));
    }
    SECTION("ops do not cover target_size") {
        Header h = ok;
        h.target_size += 1;
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("target_size"));
    }
    SECTION("blob offsets not contiguous") {
        Header h = ok;
        h.operations[3].data_offset += 1;
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operations[3].data_offset"));
    }
    SECTION("bad hex") {
        Header h = ok;
        h.operations[0].data_sha256[5] = 'g';
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operations[0].data_sha256"));
        h = ok;
        h.target_sha256 = std::string(64, 'A');
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.source->sha256.pop_back();
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
    }
    SECTION("per-chunk source hashes") {
        Header h = ok;
        h.source->chunk_size = kMinSourceChunk; // 1000 bytes: one chunk
        h.source->chunk_sha256 = {std::string(64, 'd')};
        Header back = parse_header(header_to_json(h));
        CHECK(back.source->chunk_size == kMinSourceChunk);
        CHECK(back.source->chunk_sha256 == h.source->chunk_sha256);
        Header bad = h;
        bad.source->chunk_size = 100000; // not a power of two
        CHECK(parse_error_kind(bad, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("source.chunk_size"));
        bad = h;
        bad.source->chunk_size = kMinSourceChunk / 2;
        CHECK(parse_error_kind(bad) == ErrorKind::Malformed);
        bad = h;
        bad.source->chunk_sha256.push_back(std::string(64, 'e')); // two hashes for one chunk
        CHECK(parse_error_kind(bad, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("needs 1"));
        bad = h;
        bad.source->chunk_sha256[0][7] = 'x';
        CHECK(parse_error_kind(bad, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("source.chunk_sha256[0]"));
        bad = h;
        bad.source->chunk_size = 0; // hashes without a chunk size (the writer's check)
        CHECK(error_kind_of([&] { validate_header(bad); }) == ErrorKind::Malformed);
        Json j = Json::parse(header_to_json(h)); // and in a parsed header
        j["source"].erase("chunk_size");
        CHECK(error_kind_of([&] { parse_header(j.dump()); }) == ErrorKind::Malformed);
    }
    SECTION("op output above the bound") {
        Header h;
        h.target_sha256 = std::string(64, 'a');
        Operation op;
        op.dst_length = kMaxOpOutput + 1;
        h.operations.push_back(op);
        h.target_size = h.max_op_output = op.dst_length;
        CHECK(parse_error_kind(h) == ErrorKind::TooLarge);
    }
    SECTION("blob above the bound") {
        Header h = ok;
        h.operations[4].data_length = kMaxBlobSize + 1;
        CHECK(parse_error_kind(h) == ErrorKind::TooLarge);
    }
    SECTION("source extents") {
        Header h = ok;
        h.operations[2].src_extents[1].offset = 990; // 990 + 20 > source size 1000
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operations[2].src_extents[1]"));
        h = ok;
        h.operations[2].src_extents[0].length = 11; // copy total != dst_length
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.operations[4].src_extents.assign(kMaxSourceExtents + 1, Extent{0, 1});
        CHECK(parse_error_kind(h) == ErrorKind::TooLarge);
        h = ok;
        h.source.reset();
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("no source"));
    }
    SECTION("data on an op kind without data") {
        Header h = ok;
        h.operations[1].data_sha256 = std::string(64, 'd');
        CHECK_THROWS_AS(validate_header(h), Error);
    }
    SECTION("max_op_output must be exact") {
        Header h = ok;
        h.max_op_output += 1;
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
    }
    SECTION("files") {
        Header h = ok;
        h.files[0].path = "/etc/passwd";
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h.files[0].path = "models/../../etc/passwd";
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h.files[0].path = "models//a";
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.files[1].offset = 50; // overlaps files[0]
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("files[1]"));
        h = ok;
        std::swap(h.files[0], h.files[1]);
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.files[1].length = 1000; // beyond target
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.files[1].path = h.files[0].path;
        h.files[1].offset = 100;
        h.files[1].length = 0;
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
    }
    SECTION("JSON shape") {
        std::string good = header_to_json(ok);
        auto kind = [](const std::string& text) {
            return error_kind_of([&] { parse_header(text); });
        };
        CHECK(kind("[]") == ErrorKind::Malformed);
        CHECK(kind("{") == ErrorKind::Malformed);
        CHECK(kind(good + " ") == ErrorKind::Malformed);                   // not canonical
        CHECK(kind("{\"x\":1," + good.substr(1)) == ErrorKind::Malformed); // unknown key
        std::string s = good;
        s.replace(s.find("\"format\":1"), 10, "\"format\":3");
        CHECK(kind(s) == ErrorKind::Malformed);
        s = good;
        s.replace(s.find("\"format\":1"), 10, "\"format\":-1");
        CHECK(kind(s) == ErrorKind::Malformed);
        s = good;
        s.replace(s.find("\"format\":1"), 10, "\"format\":1.0");
        CHECK(kind(s) == ErrorKind::Malformed);
        s = good;
        s.replace(s.find("\"type\":\"zero\""), 13, "\"type\":\"nope\"");
        CHECK(kind(s) == ErrorKind::Malformed);
        s = good; // duplicate key: same value twice is still refused (not canonical)
        s.replace(s.find("\"format\":1"), 10, "\"format\":1,\"format\":1");
        CHECK(kind(s) == ErrorKind::Malformed);
    }
    SECTION("too many operations is refused before they are parsed") {
        std::string text = "{\"files\":[],\"format\":1,\"max_op_output\":0,\"operations\":[";
        for (uint64_t i = 0; i <= kMaxOperations; ++i)
            text += i ? ",0" : "0";
        text += "],\"payload_kind\":\"firmware\",\"target_sha256\":\"" + std::string(64, 'a') +
                "\",\"target_size\":0}";
        REQUIRE(text.size() < kMaxHeaderSize);
        CHECK(error_kind_of([&] { parse_header(text); }) == ErrorKind::TooLarge);
    }
    SECTION("header bytes above the bound") {
        CHECK(error_kind_of([&] { parse_header(std::string(kMaxHeaderSize + 1, ' ')); }) ==
              ErrorKind::TooLarge);
    }
}

TEST_CASE("the reader checks the header hash before parsing and the exact file size", "[bundle]") {
    TempDir dir;
    std::string img = mixed_image(300 << 10, 7);
    write_all_file(dir.file("image"), img);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), small_chunks());
    const std::string bundle = dir.file("bundle");
    std::string original = read_all(bundle);
    std::string msg;

    SECTION("flipped header byte: hash mismatch, even where the JSON becomes invalid") {
        flip_byte(bundle, kPreambleSize); // '{' -> 'z'
        CHECK(
            error_kind_of([&] { BundleFile::open(bundle, info.header_sha256, info.header_length); },
                          &msg) == ErrorKind::HashMismatch);
        CHECK_THAT(msg, Catch::Contains("header SHA-256"));
    }
    SECTION("wrong signed header length") {
        CHECK(error_kind_of([&] {
                  BundleFile::open(bundle, info.header_sha256, info.header_length + 1);
              }) == ErrorKind::HashMismatch);
    }
    SECTION("huge header length in the preamble") {
        std::string d = original;
        d[8 + 5] = 1; // 2^40
        write_all_file(bundle, d);
        CHECK(error_kind_of([&] {
                  BundleFile::open(bundle, info.header_sha256, info.header_length);
              }) == ErrorKind::TooLarge);
    }
    SECTION("bad magic") {
        flip_byte(bundle, 0);
        CHECK(error_kind_of([&] { BundleFile::open_self_verified(bundle); }) ==
              ErrorKind::Malformed);
    }
    SECTION("truncated bundle") {
        write_all_file(bundle, original.substr(0, original.size() - 1));
        CHECK(
            error_kind_of([&] { BundleFile::open(bundle, info.header_sha256, info.header_length); },
                          &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("truncated"));
        write_all_file(bundle, original.substr(0, 20));
        CHECK(error_kind_of([&] {
                  BundleFile::open(bundle, info.header_sha256, info.header_length);
              }) == ErrorKind::Malformed);
        write_all_file(bundle, original.substr(0, 5));
        CHECK(error_kind_of([&] { BundleFile::open_self_verified(bundle); }) ==
              ErrorKind::Malformed);
    }
    SECTION("trailing bytes after the last blob") {
        write_all_file(bundle, original + "x");
        CHECK(
            error_kind_of([&] { BundleFile::open(bundle, info.header_sha256, info.header_length); },
                          &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("after the last blob"));
    }
}

TEST_CASE("a corrupted blob is refused before anything of its op is written", "[bundle]") {
    TempDir dir;
    std::string img = pseudo_random_bytes(512 << 10, 11);
    write_all_file(dir.file("image"), img);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), small_chunks());
    REQUIRE(info.header.operations.size() == 8);
    const std::string before(img.size(), '\x33');
    write_all_file(dir.file("target"), before);
    const uint64_t blobs = kPreambleSize + info.header_length;

    SECTION("first blob: the target is byte-identical to before") {
        flip_byte(dir.file("bundle"), blobs + 10);
        std::string msg;
        CHECK(error_kind_of([&] { install(dir.file("bundle"), dir.file("target"), dir.file("j")); },
                            &msg) == ErrorKind::HashMismatch);
        CHECK_THAT(msg, Catch::Contains("operation 0"));
        CHECK_BYTES(read_all(dir.file("target")), before);
    }
    SECTION("blob of op 5: ops 5.. untouched, resume after repair finishes the job") {
        const Operation& op5 = info.header.operations[5];
        std::string good = read_all(dir.file("bundle"));
        flip_byte(dir.file("bundle"), blobs + op5.data_offset + op5.data_length - 1);
        InstallOptions opts;
        opts.checkpoint_bytes = 0;
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"), nullptr, opts);
              }) == ErrorKind::HashMismatch);
        std::string t = read_all(dir.file("target"));
        CHECK_BYTES(t.substr(op5.dst_offset), before.substr(op5.dst_offset));
        CHECK_BYTES(t.substr(0, op5.dst_offset), img.substr(0, op5.dst_offset));
        write_all_file(dir.file("bundle"), good);
        InstallResult r = install(dir.file("bundle"), dir.file("target"), dir.file("j"));
        CHECK(r.skipped == 5);
        CHECK_BYTES(read_all(dir.file("target")), img);
    }
}

TEST_CASE("delta ops: Copy and ZstdPatch against a source slot", "[bundle]") {
    TempDir dir;
    const std::string src = pseudo_random_bytes(512 << 10, 21);
    write_all_file(dir.file("source"), src);
    // New image: a moved source region, an edited region (patch against its old version), new
    // random data, zeros.
    std::string part_copy = src.substr(300000, 70000) + src.substr(10, 5000);
    std::string patch_prefix = src.substr(100000, 150000);
    std::string part_patch = patch_prefix;
    for (size_t i = 0; i < part_patch.size(); i += 4096)
        part_patch[i] = 'X';
    part_patch += "appended tail";
    std::string part_new = pseudo_random_bytes(30000, 22);
    std::string img = part_copy + part_patch + part_new + std::string(40000, '\0');

    BundleWriter w(dir.file("bundle"));
    w.set_source({src.size(), sha256_hex(src)});
    w.add_copy({{300000, 70000}, {10, 5000}});
    std::string frame = zstd_frame(part_patch, &patch_prefix);
    CHECK(frame.size() < 20000); // the prefix made the patch small
    w.add_operation(OpType::ZstdPatch, part_patch.size(), {{100000, 150000}}, frame.data(),
                    frame.size());
    std::string nf = zstd_frame(part_new);
    w.add_zstd(part_new.size(), nf.data(), nf.size());
    w.add_zero(40000);
    BundleInfo info = w.finish(sha256_hex(img));
    CHECK(info.header.source->size == src.size());
    std::string listing;
    ota::test::run_command("ls -a " + dir.path(), &listing);
    CHECK(listing.find(".tmp") == std::string::npos); // no staging file left

    const std::string before(img.size() + 100, '\x44'); // target larger than the image is fine
    write_all_file(dir.file("target"), before);
    const std::string source_path = dir.file("source");

    SECTION("applies") {
        install(dir.file("bundle"), dir.file("target"), dir.file("j"), &source_path);
        std::string t = read_all(dir.file("target"));
        CHECK_BYTES(t.substr(0, img.size()), img);
        CHECK_BYTES(t.substr(img.size()), before.substr(img.size()));
    }
    SECTION("offline apply to a file") {
        std::string err;
        CHECK(apply_bundle_file(dir.file("bundle"), &source_path, dir.file("out"), &err) == 0);
        CHECK(err.empty());
        CHECK_BYTES(read_all(dir.file("out")), img);
        CHECK(!file_exists(dir.file("out") + ".journal"));
        CHECK(apply_bundle_file(dir.file("bundle"), nullptr, dir.file("out2"), &err) == 1);
        CHECK_THAT(err, Catch::Contains("source"));
    }
    SECTION("a modified source is rejected before any write") {
        std::string bad = src;
        bad[511 << 10] ^= 1; // a byte no op reads: the whole-source hash still catches it
        write_all_file(source_path, bad);
        std::string msg;
        CHECK(error_kind_of(
                  [&] {
                      install(dir.file("bundle"), dir.file("target"), dir.file("j"), &source_path);
                  },
                  &msg) == ErrorKind::SourceMismatch);
        CHECK_BYTES(read_all(dir.file("target")), before);
        CHECK(!file_exists(dir.file("j")));
    }
    SECTION("the source slot cannot also be the target") {
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("source"), dir.file("j"), &source_path);
              }) == ErrorKind::Config);
        CHECK_BYTES(read_all(source_path), src);
    }
    SECTION("no source or a short one is rejected before any write") {
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"));
              }) == ErrorKind::SourceMismatch);
        write_all_file(source_path, src.substr(0, 1000));
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"), &source_path);
              }) == ErrorKind::SourceMismatch);
        CHECK_BYTES(read_all(dir.file("target")), before);
    }
}

TEST_CASE("zstd blobs must decode to exactly dst_length", "[bundle]") {
    TempDir dir;
    std::string data = pseudo_random_bytes(1000, 31);
    std::string frame = zstd_frame(data);
    write_all_file(dir.file("target"), std::string(2000, '\0'));
    std::string msg;

    SECTION("frame shorter than dst_length") {
        BundleWriter w(dir.file("bundle"));
        w.add_zstd(1001, frame.data(), frame.size());
        w.finish(sha256_hex(data + '\0'));
        CHECK(error_kind_of([&] { install(dir.file("bundle"), dir.file("target"), dir.file("j")); },
                            &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("operation 0"));
    }
    SECTION("two concatenated frames") {
        std::string two = frame + zstd_frame("x");
        BundleWriter w(dir.file("bundle"));
        w.add_zstd(1000, two.data(), two.size());
        w.finish(sha256_hex(data));
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"));
              }) == ErrorKind::Malformed);
    }
    SECTION("not zstd at all") {
        BundleWriter w(dir.file("bundle"));
        w.add_zstd(1000, data.data(), data.size());
        w.finish(sha256_hex(data));
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"));
              }) == ErrorKind::Malformed);
    }
    CHECK_BYTES(read_all(dir.file("target")), std::string(2000, '\0'));
}

TEST_CASE("Diff ops go through the registered decoder", "[bundle]") {
    TempDir dir;
    const std::string src = pseudo_random_bytes(4096, 41);
    write_all_file(dir.file("source"), src);
    const std::string source_path = dir.file("source");
    // A toy patch format for this test only: the decoder XORs the blob onto the allowed extent.
    std::string blob(1000, '\x01');
    std::string img = src.substr(2000, 1000);
    for (auto& c : img)
        c = static_cast<char>(c ^ 1);
    BundleWriter w(dir.file("bundle"));
    w.set_source({src.size(), sha256_hex(src)});
    w.add_operation(OpType::Diff, 1000, {{2000, 1000}}, blob.data(), blob.size());
    w.finish(sha256_hex(img));
    write_all_file(dir.file("target"), std::string(1000, '\0'));

    CHECK(error_kind_of([&] {
              install(dir.file("bundle"), dir.file("target"), dir.file("j"), &source_path);
          }) == ErrorKind::Unsupported);
    CHECK_BYTES(read_all(dir.file("target")), std::string(1000, '\0'));

    InstallOptions opts;
    opts.apply_diff = [](const uint8_t* b, size_t n, hal::BlockDevice& s,
                         const std::vector<Extent>& allowed, uint8_t* out, size_t out_size) {
        REQUIRE(allowed.size() == 1);
        REQUIRE(n == out_size);
        s.read(allowed[0].offset, out, out_size);
        for (size_t i = 0; i < n; ++i)
            out[i] ^= b[i];
    };
    install(dir.file("bundle"), dir.file("target"), dir.file("j"), &source_path, opts);
    CHECK_BYTES(read_all(dir.file("target")), img);
}

TEST_CASE("the whole target is verified after writing", "[bundle]") {
    TempDir dir;
    std::string img = mixed_image(256 << 10, 51);
    write_all_file(dir.file("image"), img);
    write_all_file(dir.file("target"), std::string(img.size(), '\0'));

    SECTION("target tampered between ops") {
        // Format 1 checks the whole-image hash, format 2 each chunk.
        const bool chunked = GENERATE(false, true);
        FullBundleOptions options = small_chunks();
        options.target_chunk_hashes = chunked;
        build_full_bundle(dir.file("image"), dir.file("bundle"), options);
        InstallOptions opts;
        opts.checkpoint_bytes = 0;
        opts.after_op_written = [&](size_t i) {
            if (i != 1) return;
            UniqueFd fd = open_or_throw(dir.file("target"), O_WRONLY);
            pwrite_all(fd.get(), "!", 1, (64 << 10) + 5, "target");
        };
        std::string msg;
        CHECK(error_kind_of(
                  [&] {
                      install(dir.file("bundle"), dir.file("target"), dir.file("j"), nullptr, opts);
                  },
                  &msg) == ErrorKind::HashMismatch);
        CHECK_THAT(msg,
                   Catch::Contains(chunked ? "bytes 0..262144 (chunk 0 of 1)" : "target_sha256"));
        // The journal does not claim success and a retry rewrites everything.
        InstallJournal j(dir.file("j"));
        REQUIRE(j.load());
        CHECK_FALSE(j.load()->complete);
        InstallResult r = install(dir.file("bundle"), dir.file("target"), dir.file("j"));
        CHECK(r.skipped == 0);
        CHECK_BYTES(read_all(dir.file("target")), img);
    }
    SECTION("header whose target_sha256 is wrong while every blob is consistent") {
        BundleWriter w(dir.file("bundle"));
        std::string frame = zstd_frame(img);
        w.add_zstd(img.size(), frame.data(), frame.size());
        std::string wrong = img;
        wrong[0] ^= 1;
        w.finish(sha256_hex(wrong));
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"));
              }) == ErrorKind::HashMismatch);
        std::string err;
        CHECK(apply_bundle_file(dir.file("bundle"), nullptr, dir.file("out"), &err) == 1);
        CHECK_THAT(err, Catch::Contains("target_sha256"));
    }
    SECTION("a target smaller than the image is refused before writing") {
        build_full_bundle(dir.file("image"), dir.file("bundle"), small_chunks());
        write_all_file(dir.file("target"), std::string(img.size() - 1, '\x07'));
        CHECK(error_kind_of([&] {
                  install(dir.file("bundle"), dir.file("target"), dir.file("j"));
              }) == ErrorKind::TooLarge);
        CHECK_BYTES(read_all(dir.file("target")), std::string(img.size() - 1, '\x07'));
    }
}

TEST_CASE("a journal of another bundle is discarded", "[bundle]") {
    TempDir dir;
    std::string a = mixed_image(256 << 10, 61), b = mixed_image(256 << 10, 62);
    write_all_file(dir.file("a"), a);
    write_all_file(dir.file("b"), b);
    build_full_bundle(dir.file("a"), dir.file("ba"), small_chunks());
    build_full_bundle(dir.file("b"), dir.file("bb"), small_chunks());
    write_all_file(dir.file("target"), std::string(a.size(), '\0'));
    InstallOptions opts;
    opts.checkpoint_bytes = 0;
    opts.after_op_written = [](size_t i) {
        if (i == 2) throw Error(ErrorKind::Io, "simulated power cut");
    };
    CHECK_THROWS(install(dir.file("ba"), dir.file("target"), dir.file("j"), nullptr, opts));
    REQUIRE(InstallJournal(dir.file("j")).load()->next_op == 2);
    InstallResult r = install(dir.file("bb"), dir.file("target"), dir.file("j"));
    CHECK(r.skipped == 0);
    CHECK_BYTES(read_all(dir.file("target")), b);
    // A corrupt journal is ignored, never trusted.
    write_all_file(dir.file("j"), "{not json");
    r = install(dir.file("ba"), dir.file("target"), dir.file("j"));
    CHECK(r.skipped == 0);
    CHECK_BYTES(read_all(dir.file("target")), a);
}

TEST_CASE("an install killed at random points resumes to the exact image", "[bundle]") {
    // Format 2 (per-chunk target hashes, 64 KiB) and format 1 (whole-image hash).
    const bool chunked = GENERATE(true, false);
    TempDir dir;
    // A delta-style bundle so resume also exercises source reads: copy, patch, zstd, zero ops.
    const std::string src = pseudo_random_bytes(2 << 20, 71);
    write_all_file(dir.file("source"), src);
    const std::string source_path = dir.file("source");
    std::string img;
    BundleWriter w(dir.file("bundle"));
    w.set_source({src.size(), sha256_hex(src)});
    for (int i = 0; i < 24; ++i) {
        uint64_t off = static_cast<uint64_t>(i) * 65536;
        switch (i % 4) {
        case 0:
            w.add_copy({{off, 65536}});
            img += src.substr(off, 65536);
            break;
        case 1: {
            std::string prefix = src.substr(off, 65536);
            std::string part = prefix;
            part[100] ^= 0x55;
            std::string f = zstd_frame(part, &prefix);
            w.add_operation(OpType::ZstdPatch, part.size(), {{off, 65536}}, f.data(), f.size());
            img += part;
            break;
        }
        case 2: {
            std::string part = pseudo_random_bytes(65536, 100 + i);
            std::string f = zstd_frame(part);
            w.add_zstd(part.size(), f.data(), f.size());
            img += part;
            break;
        }
        default: w.add_zero(65536); img += std::string(65536, '\0');
        }
    }
    w.finish(digest_image(img.data(), img.size(), chunked ? 65536 : 0));

    for (uint64_t seed = 1; seed <= 8; ++seed) {
        CAPTURE(seed);
        const std::string target = dir.file("target" + std::to_string(seed));
        const std::string journal = dir.file("journal" + std::to_string(seed));
        write_all_file(target, pseudo_random_bytes(img.size(), seed));
        // Odd seeds: the child kills itself right after writing a given op (before its checkpoint);
        // even seeds: the parent kills it after a random delay.
        const size_t kill_at = static_cast<size_t>((seed * 7) % 24);
        const useconds_t delay = static_cast<useconds_t>((seed * 7919) % 20000);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            try {
                InstallOptions opts;
                opts.checkpoint_bytes = (seed % 3) * 65536; // 0: every op
                if (seed % 2)
                    opts.after_op_written = [&](size_t i) {
                        if (i == kill_at) ::kill(::getpid(), SIGKILL);
                    };
                install(dir.file("bundle"), target, journal, &source_path, opts);
            } catch (...) {
                _exit(3);
            }
            _exit(0);
        }
        if (seed % 2 == 0) {
            ::usleep(delay);
            ::kill(pid, SIGKILL);
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        CHECK((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
        auto state = InstallJournal(journal).load();
        uint64_t recorded = state && !state->complete ? state->next_op : 0;
        if (WIFSIGNALED(status) && seed % 2) CHECK(recorded <= kill_at);
        InstallResult r = install(dir.file("bundle"), target, journal, &source_path);
        if (!r.already_complete) CHECK(r.skipped == recorded);
        CHECK(sha256_hex(read_all(target)) == sha256_hex(img));
        CHECK(InstallJournal(journal).load()->complete);
    }
}
