// The Diff blob codec: encode_diff + apply_diff round trips, and hostile blobs.
#include "agent/common/error.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_encode.h"
#include "agent/delta/diff_format.h"
#include "delta_test_util.h"

#include <catch2/catch.hpp>
#include <zstd.h>

#include <cstring>
#include <initializer_list>

using namespace ota;
using namespace ota::test;

namespace {

const uint8_t* bytes(const std::string& s) {
    return reinterpret_cast<const uint8_t*>(s.data());
}

// Applies a blob; returns the output. The device records reads.
std::string apply(const std::string& blob, RecordingDevice& source,
                  const std::vector<bundle::Extent>& allowed, size_t out_size) {
    std::string out(out_size, '\x77');
    delta::apply_diff(bytes(blob), blob.size(), source, allowed,
                      reinterpret_cast<uint8_t*>(out.data()), out.size());
    return out;
}

std::string zstd(const std::string& s) {
    return delta::zstd_compress(bytes(s), s.size(), 3);
}

// Builds a blob by hand from raw streams (for hostile inputs).
std::string make_blob(uint64_t out_size, uint64_t ctrl_count, const std::string& ctrl,
                      const std::string& diff, const std::string& extra) {
    std::string c = ctrl.empty() ? "" : zstd(ctrl), d = diff.empty() ? "" : zstd(diff),
                e = extra.empty() ? "" : zstd(extra);
    std::string b(delta::format::kMagic, sizeof(delta::format::kMagic));
    for (uint64_t v :
         {out_size, ctrl_count, uint64_t(ctrl.size()), uint64_t(c.size()), uint64_t(diff.size()),
          uint64_t(d.size()), uint64_t(extra.size()), uint64_t(e.size())})
        delta::format::put_varint(b, v);
    return b + c + d + e;
}

std::string entry(int64_t seek, uint64_t dl, uint64_t el) {
    std::string s;
    delta::format::put_varint(s, delta::format::zigzag_encode(seek));
    delta::format::put_varint(s, dl);
    delta::format::put_varint(s, el);
    return s;
}

void require_malformed(const std::string& blob, RecordingDevice& source,
                       const std::vector<bundle::Extent>& allowed, size_t out_size) {
    std::string out(out_size, '\x77');
    try {
        delta::apply_diff(bytes(blob), blob.size(), source, allowed,
                          reinterpret_cast<uint8_t*>(out.data()), out.size());
        FAIL("blob accepted");
    } catch (const Error& e) {
        REQUIRE(e.kind() == ErrorKind::Malformed);
    }
}

// Applies the blob with each byte flipped by each of `flips`: every result is either a clean
// Malformed error or an output of the right size (the bundle's SHA-256 per blob catches those),
// never a read outside the extents. Returns how many were refused.
size_t apply_with_flipped_bytes(const std::string& blob, RecordingDevice& source,
                                const std::vector<bundle::Extent>& extents, size_t out_size,
                                std::initializer_list<uint8_t> flips) {
    size_t rejected = 0;
    for (size_t i = 0; i < blob.size(); ++i) {
        for (uint8_t flip : flips) {
            std::string bad = blob;
            bad[i] = static_cast<char>(bad[i] ^ flip);
            source.reads.clear();
            std::string out(out_size, '\0');
            try {
                delta::apply_diff(bytes(bad), bad.size(), source, extents,
                                  reinterpret_cast<uint8_t*>(out.data()), out.size());
            } catch (const Error& e) {
                REQUIRE(e.kind() == ErrorKind::Malformed);
                ++rejected;
            }
            REQUIRE(source.reads_within(extents));
        }
    }
    return rejected;
}

} // namespace

TEST_CASE("diff round trips on synthetic pairs and reads only its extents") {
    TempDir dir;
    for (const auto& pair : synthetic_pairs()) {
        INFO(pair.name);
        auto source = image_device(dir, "old", pair.old_image);
        delta::SuffixArray sa(bytes(pair.old_image), pair.old_image.size());
        auto enc = delta::encode_diff(sa, bytes(pair.new_image), pair.new_image.size(), 0, {}, 16);
        REQUIRE(!enc.blob.empty());
        REQUIRE(enc.src_extents.size() <= 16);
        std::string out = apply(enc.blob, *source, enc.src_extents, pair.new_image.size());
        REQUIRE(out == pair.new_image);
        REQUIRE(source->reads_within(enc.src_extents));
    }
}

TEST_CASE("diff of similar data is much smaller than the data") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(300000, 7), new_image = old_image;
    new_image.insert(100000, "inserted bytes that shift everything after them");
    for (size_t i = 1000; i < new_image.size(); i += 10000)
        new_image[i] ^= 1;
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto enc = delta::encode_diff(sa, bytes(new_image), new_image.size(), 0, {}, 16);
    REQUIRE(enc.blob.size() < 2000);
    auto source = image_device(dir, "old", old_image);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);
}

TEST_CASE("a long, nearly aligned run costs the matcher about one comparison per byte") {
    // A file-system image where a field became zero: a zero run one field longer than in the
    // old image, with a longer zero run elsewhere in the old image. Every position of the run
    // has a longer exact match in that other run than the alignment gives, but by less than the
    // match threshold: the matcher used to search again at every byte, comparing the whole rest
    // of the run each time (the 64 MiB ext4 pair with a 35 MiB shift spent 5 minutes there).
    const std::string head = pseudo_random_bytes(50000, 71), tail = pseudo_random_bytes(50000, 72);
    const std::string field = "\x11\x22\x33\x44\x55\x66\x77\x08";
    const std::string old_image =
        head + std::string(60000, '\0') + field + tail + std::string(80000, '\0') + head;
    const std::string new_image =
        head + std::string(60000, '\0') + std::string(8, '\0') + tail + head;
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    for (uint64_t min_match : {8, 16}) {
        INFO("min_match " << min_match);
        delta::DiffEncodeOptions opt;
        opt.min_match = min_match;
        const auto streams =
            delta::build_diff_streams(sa, bytes(new_image), new_image.size(), 0, opt);
        REQUIRE(streams.compared < 40 * new_image.size());
        const auto enc = delta::pack_diff(streams, 3);
        REQUIRE(enc.blob.size() < 300);
        TempDir dir;
        auto source = image_device(dir, "old", old_image);
        REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);
    }
}

TEST_CASE("diff round trip on a real executable and a modified copy") {
    std::string exe = read_all("/bin/ls");
    REQUIRE(exe.size() > 50000);
    std::string modified = exe;
    modified.insert(modified.size() / 3, pseudo_random_bytes(1500, 3));
    // Shift-like edits: bump 32-bit words every 2 KiB, as relocated addresses do.
    for (size_t i = 64; i + 4 < modified.size(); i += 2048)
        modified[i] = char(modified[i] + 16);
    modified.erase(modified.size() * 2 / 3, 4000);
    TempDir dir;
    auto source = image_device(dir, "old", exe);
    delta::SuffixArray sa(bytes(exe), exe.size());
    // Encode in two ops, as the planner would, the second one with a new_offset.
    size_t half = modified.size() / 2;
    for (auto [off, len] : {std::pair<size_t, size_t>{0, half}, {half, modified.size() - half}}) {
        auto enc = delta::encode_diff(sa, bytes(modified) + off, len, off, {}, 16);
        REQUIRE(enc.blob.size() < len / 8);
        source->reads.clear();
        REQUIRE(apply(enc.blob, *source, enc.src_extents, len) == modified.substr(off, len));
        REQUIRE(source->reads_within(enc.src_extents));
    }
}

TEST_CASE("diff refuses reads outside the allowed extents before writing") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(100000, 11), new_image = old_image;
    new_image[50000] ^= 1;
    auto source = image_device(dir, "old", old_image);
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto enc = delta::encode_diff(sa, bytes(new_image), new_image.size(), 0, {}, 16);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);

    source->reads.clear();
    std::vector<bundle::Extent> narrow = {{0, 40000}};
    std::string out(new_image.size(), '\x77');
    REQUIRE_THROWS_MATCHES(delta::apply_diff(bytes(enc.blob), enc.blob.size(), *source, narrow,
                                             reinterpret_cast<uint8_t*>(out.data()), out.size()),
                           Error, Catch::Predicate<Error>([](const Error& e) {
                               return e.kind() == ErrorKind::Malformed;
                           }));
    REQUIRE(out == std::string(new_image.size(), '\x77'));
    REQUIRE(source->reads.empty());
    require_malformed(enc.blob, *source, {}, new_image.size());
}

TEST_CASE("diff rejects hand-made hostile blobs") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(1000, 5);
    auto source = image_device(dir, "old", old_image);
    std::vector<bundle::Extent> all = {{0, 1000}};
    std::string d10(10, '\0');

    SECTION("a valid hand-made blob works") {
        std::string b = make_blob(15, 2, entry(100, 10, 0) + entry(5, 0, 5), d10, "hello");
        REQUIRE(apply(b, *source, all, 15) == old_image.substr(100, 10) + "hello");
    }
    SECTION("wrong output size") {
        require_malformed(make_blob(16, 1, entry(0, 10, 0), d10, ""), *source, all, 16);
        require_malformed(make_blob(10, 1, entry(0, 10, 0), d10, ""), *source, all, 11);
    }
    SECTION("seek before the start or past the end of the source") {
        require_malformed(make_blob(10, 1, entry(-1, 10, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(995, 10, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(INT64_MAX, 10, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(INT64_MIN, 10, 0), d10, ""), *source, all, 10);
    }
    SECTION("counts that do not match the streams") {
        require_malformed(make_blob(10, 2, entry(0, 10, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(0, 11, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(0, 9, 0), d10, ""), *source, all, 10);
        require_malformed(make_blob(10, 1, entry(0, 0, 0) + entry(0, 10, 0), d10, ""), *source, all,
                          10);
        require_malformed(make_blob(10, 1, entry(0, 10, 0) + "x", d10, ""), *source, all, 10);
    }
    SECTION("huge declared sizes are refused without allocating") {
        std::string b(delta::format::kMagic, sizeof(delta::format::kMagic));
        for (uint64_t v : {uint64_t(10), uint64_t(1) << 40, uint64_t(1) << 62, uint64_t(5),
                           uint64_t(10), uint64_t(5), uint64_t(0), uint64_t(0)})
            delta::format::put_varint(b, v);
        b += std::string(10, 'x');
        require_malformed(b, *source, all, 10);
    }
    SECTION("a stream that decodes to a different length") {
        // Claim the diff stream is 9 bytes long and the extra 1.
        std::string c = zstd(entry(0, 9, 1)), d = zstd(std::string(10, '\0')), e = zstd("z");
        std::string h(delta::format::kMagic, sizeof(delta::format::kMagic));
        for (uint64_t v : {uint64_t(10), uint64_t(1), uint64_t(3), uint64_t(c.size()), uint64_t(9),
                           uint64_t(d.size()), uint64_t(1), uint64_t(e.size())})
            delta::format::put_varint(h, v);
        require_malformed(h + c + d + e, *source, all, 10);
    }
}

TEST_CASE("diff rejects every truncation and survives corruption of a real blob") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(20000, 21), new_image = old_image;
    new_image.insert(7000, pseudo_random_bytes(300, 22));
    for (size_t i = 100; i < new_image.size(); i += 900)
        new_image[i] ^= 0x10;
    auto source = image_device(dir, "old", old_image);
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto enc = delta::encode_diff(sa, bytes(new_image), new_image.size(), 0, {}, 16);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);

    for (size_t n = 0; n < enc.blob.size(); ++n)
        require_malformed(enc.blob.substr(0, n), *source, enc.src_extents, new_image.size());

    REQUIRE(apply_with_flipped_bytes(enc.blob, *source, enc.src_extents, new_image.size(),
                                     {0x01, 0x80, 0xff}) > 0);
}

TEST_CASE("extents are coalesced to the requested count") {
    std::vector<bundle::Extent> e = {{100, 10}, {0, 10}, {10, 5}, {50, 1}, {200, 1}, {205, 5}};
    auto all = delta::coalesce_extents(e, 16);
    REQUIRE(all.size() == 5); // {0,15} {50,1} {100,10} {200,1} {205,5}
    REQUIRE(all[0].offset == 0);
    REQUIRE(all[0].length == 15);
    auto two = delta::coalesce_extents(e, 2);
    REQUIRE(two.size() == 2);
    REQUIRE(two[0].offset == 0);
    REQUIRE(two[0].length == 110);
    REQUIRE(two[1].offset == 200);
    REQUIRE(two[1].length == 10);
    auto one = delta::coalesce_extents(e, 1);
    REQUIRE(one.size() == 1);
    REQUIRE(one[0].length == 210);
}

TEST_CASE("varints decode what they encode and reject overlong input") {
    for (uint64_t v : {uint64_t(0), uint64_t(127), uint64_t(128), uint64_t(1) << 35, UINT64_MAX}) {
        std::string s;
        delta::format::put_varint(s, v);
        const uint8_t* p = bytes(s);
        uint64_t got = 0;
        REQUIRE(delta::format::get_varint(p, p + s.size(), got));
        REQUIRE(got == v);
    }
    for (int64_t v : {int64_t(0), int64_t(-1), int64_t(1), INT64_MIN, INT64_MAX})
        REQUIRE(delta::format::zigzag_decode(delta::format::zigzag_encode(v)) == v);
    std::string overlong(11, '\xff');
    const uint8_t* p = bytes(overlong);
    uint64_t v = 0;
    REQUIRE_FALSE(delta::format::get_varint(p, p + overlong.size(), v));
}

TEST_CASE("the ARM64 filter is undone exactly at any base and makes moved calls equal") {
    std::string data = fake_arm64_code(5000, 31) + "tail";
    for (uint64_t base : {uint64_t(0), uint64_t(1), uint64_t(4094), uint64_t(1) << 33}) {
        std::string f = data;
        auto* p = reinterpret_cast<uint8_t*>(f.data());
        delta::format::arm64_filter(p, f.size(), base, true);
        REQUIRE(f != data);
        delta::format::arm64_filter(p, f.size(), base, false);
        REQUIRE(f == data);
    }
    // The same call (BL to image offset 0x1000) at two places reads the same once filtered.
    std::string a(8, '\0'), b(8, '\0');
    put_word(a, 0, 0x94000000u | (0x1000 / 4));
    put_word(b, 4, 0x94000000u | ((0x1000 - 0x2004) / 4 & 0x03FFFFFFu));
    delta::format::arm64_filter(reinterpret_cast<uint8_t*>(a.data()), 8, 0, true);
    delta::format::arm64_filter(reinterpret_cast<uint8_t*>(b.data()), 8, 0x2000, true);
    REQUIRE(a.substr(0, 4) == b.substr(4, 4));
}

TEST_CASE("filtered diffs of shifted ARM64 code round trip, read only their extents, and are "
          "smaller") {
    std::string old_image = fake_arm64_code(60000, 41);
    std::string new_image = fake_arm64_code(60000, 41, 25000, 1000);
    TempDir dir;
    auto source = image_device(dir, "old", old_image);
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto filtered_old = delta::arm64_filtered_copy(bytes(old_image), old_image.size(), 0);
    delta::SuffixArray fsa(filtered_old.data(), filtered_old.size());
    REQUIRE(delta::arm64_call_density(bytes(old_image), old_image.size()) > 0.1);
    delta::DiffEncodeOptions plain, filtered;
    filtered.arm64_filter = true;
    // Ops at unaligned offsets too: only whole words inside an op are filtered.
    size_t cut = new_image.size() / 2 + 1;
    for (auto [off, len] : {std::pair<size_t, size_t>{0, cut}, {cut, new_image.size() - cut}}) {
        auto enc = delta::encode_diff(fsa, bytes(new_image) + off, len, off, filtered, 16);
        auto enc_plain = delta::encode_diff(sa, bytes(new_image) + off, len, off, plain, 16);
        REQUIRE(is_filtered(enc.blob));
        REQUIRE(enc.blob.size() < enc_plain.blob.size());
        source->reads.clear();
        REQUIRE(apply(enc.blob, *source, enc.src_extents, len) == new_image.substr(off, len));
        REQUIRE(source->reads_within(enc.src_extents));
    }
}

TEST_CASE("filtered diff blobs: every truncation rejected, corruption never reads outside") {
    std::string old_image = fake_arm64_code(5001, 51) + "xyz";
    std::string new_image = fake_arm64_code(5001, 51, 1000, 120) + "xyz";
    TempDir dir;
    auto source = image_device(dir, "old", old_image);
    auto filtered_old = delta::arm64_filtered_copy(bytes(old_image), old_image.size(), 0);
    delta::SuffixArray fsa(filtered_old.data(), filtered_old.size());
    delta::DiffEncodeOptions filtered;
    filtered.arm64_filter = true;
    auto enc = delta::encode_diff(fsa, bytes(new_image), new_image.size(), 0, filtered, 16);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);
    for (size_t n = 0; n < enc.blob.size(); ++n)
        require_malformed(enc.blob.substr(0, n), *source, enc.src_extents, new_image.size());
    // Extents without the word-alignment slack are refused: reads stay inside what is listed.
    std::vector<bundle::Extent> unaligned;
    for (auto e : enc.src_extents)
        if (e.length > 8) unaligned.push_back({e.offset + 1, e.length - 2});
    require_malformed(enc.blob, *source, unaligned, new_image.size());
    REQUIRE(apply_with_flipped_bytes(enc.blob, *source, enc.src_extents, new_image.size(), {0x41}) >
            0);
}

TEST_CASE("the sparse coding of a diff stream expands to exactly its bytes") {
    std::vector<std::string> cases = {"",
                                      std::string(1, '\0'),
                                      std::string(300000, '\0'),
                                      "abc",
                                      std::string(5, '\0') + "x" + std::string(3, '\0') + "y",
                                      "x" + std::string(7, '\0') + "y" + std::string(8, '\0'),
                                      pseudo_random_bytes(5000, 81)};
    std::string mixed(200000, '\0');
    for (size_t i = 17; i < mixed.size(); i += 997)
        mixed[i] = static_cast<char>(i);
    cases.push_back(mixed);
    for (const auto& dense : cases) {
        INFO("size " << dense.size());
        const std::string coded = delta::format::sparse_encode(bytes(dense), dense.size());
        std::string back(dense.size(), '\x55');
        REQUIRE(delta::format::sparse_expand(bytes(coded), bytes(coded) + coded.size(),
                                             reinterpret_cast<uint8_t*>(back.data()), back.size()));
        REQUIRE(back == dense);
        // One byte more or less to fill is refused.
        std::string longer(dense.size() + 1, '\0');
        REQUIRE_FALSE(delta::format::sparse_expand(bytes(coded), bytes(coded) + coded.size(),
                                                   reinterpret_cast<uint8_t*>(longer.data()),
                                                   longer.size()));
        if (!dense.empty()) {
            std::string shorter(dense.size() - 1, '\0');
            REQUIRE_FALSE(delta::format::sparse_expand(bytes(coded), bytes(coded) + coded.size(),
                                                       reinterpret_cast<uint8_t*>(shorter.data()),
                                                       shorter.size()));
        }
    }
    // A zero run of 300 000 bytes costs one varint, not one zstd block per 128 KiB.
    REQUIRE(delta::format::sparse_encode(bytes(cases[2]), cases[2].size()).size() <= 5);
}

namespace {
// A 2 MiB op whose bytes moved by 1000 in the old image, with three bytes changed.
struct MovedRun {
    std::string old_image = pseudo_random_bytes(2200000, 91);
    std::string new_image = old_image.substr(1000, 2 << 20);
    MovedRun() {
        for (size_t at : {size_t(100000), size_t(900000), size_t(2000000)})
            new_image[at] = static_cast<char>(new_image[at] ^ 0x5a);
    }
};
} // namespace

TEST_CASE("a moved run with a few changed bytes costs a few dozen bytes, not a few per 128 KiB") {
    MovedRun pair;
    delta::SuffixArray sa(bytes(pair.old_image), pair.old_image.size());
    auto enc = delta::encode_diff(sa, bytes(pair.new_image), pair.new_image.size(), 0, {}, 16);
    CHECK(enc.blob.compare(0, 8, "OTADIFF4") == 0);
    CHECK(enc.blob.size() < 64);
    TempDir dir;
    auto source = image_device(dir, "old", pair.old_image);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, pair.new_image.size()) == pair.new_image);
    REQUIRE(source->reads_within(enc.src_extents));
    // The encoder's own reader gives the same streams back (it repacks ranked variants).
    const auto streams = delta::unpack_diff(enc.blob, {});
    REQUIRE(streams.diff.size() + streams.extra.size() == pair.new_image.size());
    REQUIRE(delta::pack_diff(streams, 19).blob == enc.blob);
}

TEST_CASE("sparse diff blobs: truncations, corruption and hostile codings are rejected") {
    std::string old_image = pseudo_random_bytes(40000, 93);
    std::string new_image = old_image.substr(300, 30000);
    new_image[20000] ^= 1;
    TempDir dir;
    auto source = image_device(dir, "old", old_image);
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto enc = delta::encode_diff(sa, bytes(new_image), new_image.size(), 0, {}, 16);
    REQUIRE(enc.blob.compare(0, 8, "OTADIFF4") == 0);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);
    for (size_t n = 0; n < enc.blob.size(); ++n)
        require_malformed(enc.blob.substr(0, n), *source, enc.src_extents, new_image.size());
    apply_with_flipped_bytes(enc.blob, *source, enc.src_extents, new_image.size(), {0x41});

    // Hand-made: one entry of 10 diff bytes over the source at 0.
    std::vector<bundle::Extent> all = {{0, old_image.size()}};
    auto flagged = [&](uint64_t flags, const std::string& coding, uint64_t coded_claim) {
        std::string c = zstd(entry(0, 10, 0)), d = coding.empty() ? "" : zstd(coding);
        std::string b(delta::format::kMagicFlags, sizeof(delta::format::kMagicFlags));
        delta::format::put_varint(b, flags);
        for (uint64_t v : {uint64_t(10), uint64_t(1), uint64_t(3), uint64_t(c.size()), uint64_t(10),
                           uint64_t(d.size()), uint64_t(0), uint64_t(0)})
            delta::format::put_varint(b, v);
        delta::format::put_varint(b, coded_claim);
        return b + c + d;
    };
    std::string ten_zeros;
    delta::format::put_varint(ten_zeros, 10);
    delta::format::put_varint(ten_zeros, 0);
    REQUIRE(apply(flagged(2, ten_zeros, ten_zeros.size()), *source, all, 10) ==
            old_image.substr(0, 10));
    SECTION("unknown flags") {
        require_malformed(flagged(2 | 4, ten_zeros, ten_zeros.size()), *source, all, 10);
    }
    SECTION("a coding larger than a quarter of the stream plus slack") {
        std::string big = ten_zeros + std::string(100, '\0');
        require_malformed(flagged(2, big, big.size()), *source, all, 10);
    }
    SECTION("codings that fill too few or too many bytes, or claim a different length") {
        std::string nine, eleven, empty_run = ten_zeros;
        delta::format::put_varint(nine, 9);
        delta::format::put_varint(nine, 0);
        delta::format::put_varint(eleven, 5);
        delta::format::put_varint(eleven, 6);
        eleven += "abcdef";
        delta::format::put_varint(empty_run, 0);
        delta::format::put_varint(empty_run, 0);
        require_malformed(flagged(2, nine, nine.size()), *source, all, 10);
        require_malformed(flagged(2, eleven, eleven.size()), *source, all, 10);
        require_malformed(flagged(2, empty_run, empty_run.size()), *source, all, 10);
        require_malformed(flagged(2, ten_zeros, ten_zeros.size() + 1), *source, all, 10);
    }
}

TEST_CASE("a sparse diff stream beside a larger extra stream (the forward pass) applies exactly") {
    // 100 KB moved and nearly unchanged, then 200 KB of new bytes: the extra stream is the larger
    // one, decoded at the tail of the output, and the expanded diff stream is held aside.
    std::string old_image = pseudo_random_bytes(150000, 95);
    std::string new_image = old_image.substr(20000, 100000) + pseudo_random_bytes(200000, 96);
    new_image[50000] ^= 0x21;
    delta::SuffixArray sa(bytes(old_image), old_image.size());
    auto enc = delta::encode_diff(sa, bytes(new_image), new_image.size(), 0, {}, 16);
    REQUIRE(enc.blob.compare(0, 8, "OTADIFF4") == 0);
    REQUIRE((static_cast<uint8_t>(enc.blob[8]) & delta::format::kFlagSparseDiff) != 0);
    const auto streams = delta::unpack_diff(enc.blob, {});
    REQUIRE(streams.diff.size() < streams.extra.size());
    TempDir dir;
    auto source = image_device(dir, "old", old_image);
    REQUIRE(apply(enc.blob, *source, enc.src_extents, new_image.size()) == new_image);
    REQUIRE(source->reads_within(enc.src_extents));
}
