// encode_delta: ops in write order, bounded output, each choosing the cheapest kind; applied here
// op by op with the real Diff applier and real zstd (the bundle tests run the real installer).
#include "agent/common/error.h"
#include "agent/delta/delta_plan.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_encode.h"
#include "delta_test_util.h"

#include <catch2/catch.hpp>
#include <zstd.h>

#include <cstring>

using namespace ota;
using namespace ota::test;

namespace {

const uint8_t* bytes(const std::string& s) {
    return reinterpret_cast<const uint8_t*>(s.data());
}

std::string read_extents(hal::BlockDevice& dev, const std::vector<bundle::Extent>& extents) {
    std::string s;
    for (const auto& e : extents) {
        std::string part(e.length, '\0');
        dev.read(e.offset, part.data(), part.size());
        s += part;
    }
    return s;
}

std::string apply_op(const delta::EncodedOp& op, RecordingDevice& source) {
    std::string out(op.dst_length, '\0');
    switch (op.type) {
    case bundle::OpType::Zero: break;
    case bundle::OpType::Copy: out = read_extents(source, op.src_extents); break;
    case bundle::OpType::Zstd:
    case bundle::OpType::ZstdPatch: {
        std::string prefix;
        ZSTD_DCtx* d = ZSTD_createDCtx();
        if (op.type == bundle::OpType::ZstdPatch) {
            prefix = read_extents(source, op.src_extents);
            ZSTD_DCtx_refPrefix(d, prefix.data(), prefix.size());
        }
        size_t n = ZSTD_decompressDCtx(d, out.data(), out.size(), op.blob.data(), op.blob.size());
        ZSTD_freeDCtx(d);
        REQUIRE(n == out.size());
        break;
    }
    case bundle::OpType::Diff:
        delta::apply_diff(bytes(op.blob), op.blob.size(), source, op.src_extents,
                          reinterpret_cast<uint8_t*>(out.data()), out.size());
        break;
    }
    return out;
}

struct Result {
    std::string image;
    std::vector<delta::EncodedOp> ops;
    uint64_t blob_bytes = 0;
};

Result round_trip(const TempDir& dir, const std::string& old_image, const std::string& new_image,
                  const delta::DeltaOptions& options) {
    auto source = image_device(dir, "old", old_image);
    Result r;
    uint64_t expect_offset = 0;
    delta::encode_delta(bytes(old_image), old_image.size(), bytes(new_image), new_image.size(),
                        options, [&](delta::EncodedOp&& op) {
                            REQUIRE(op.dst_offset == expect_offset);
                            REQUIRE(op.dst_length > 0);
                            REQUIRE(op.dst_length <= options.op_size);
                            REQUIRE(op.src_extents.size() <= options.max_extents);
                            source->reads.clear();
                            r.image += apply_op(op, *source);
                            REQUIRE(source->reads_within(op.src_extents));
                            expect_offset += op.dst_length;
                            r.blob_bytes += op.blob.size();
                            r.ops.push_back(std::move(op));
                        });
    REQUIRE(expect_offset == new_image.size());
    return r;
}

size_t count(const Result& r, bundle::OpType t) {
    size_t n = 0;
    for (const auto& op : r.ops)
        n += op.type == t;
    return n;
}

} // namespace

TEST_CASE("delta plan round trips on synthetic pairs with small ops") {
    TempDir dir;
    for (unsigned threads : {1u, 3u}) {
        for (const auto& pair : synthetic_pairs()) {
            INFO(pair.name << " threads " << threads);
            delta::DeltaOptions opt;
            opt.op_size = 16384;
            opt.threads = threads;
            opt.max_extents = 4;
            Result r = round_trip(dir, pair.old_image, pair.new_image, opt);
            REQUIRE(r.image == pair.new_image);
        }
    }
}

TEST_CASE("delta plan picks copy, zero, diff and zstd where each is cheapest") {
    TempDir dir;
    const uint64_t op = 65536;
    std::string old_image = pseudo_random_bytes(8 * op, 31);
    std::string new_image = old_image;                          // op 0, 1: unchanged -> Copy
    new_image.replace(2 * op, op, std::string(op, '\0'));       // op 2: zeros -> Zero
    new_image[3 * op + 100] ^= 1;                               // op 3: one byte -> Diff
    new_image.replace(4 * op, op, pseudo_random_bytes(op, 32)); // op 4: unrelated -> Zstd
    new_image.insert(5 * op + 10, "shift");                     // ops 5..: shifted -> Diff
    new_image.resize(8 * op);
    delta::DeltaOptions opt;
    opt.op_size = op;
    Result r = round_trip(dir, old_image, new_image, opt);
    REQUIRE(r.image == new_image);
    REQUIRE(r.ops.size() == 8);
    REQUIRE(r.ops[0].type == bundle::OpType::Copy);
    REQUIRE(r.ops[1].type == bundle::OpType::Copy);
    REQUIRE(r.ops[2].type == bundle::OpType::Zero);
    REQUIRE(r.ops[3].type == bundle::OpType::Diff);
    REQUIRE(r.ops[3].blob.size() < 200);
    REQUIRE((r.ops[4].type == bundle::OpType::Zstd || r.ops[4].type == bundle::OpType::ZstdPatch));
    REQUIRE(r.ops[6].type == bundle::OpType::Diff);
    REQUIRE(r.blob_bytes - r.ops[4].blob.size() < 2000);
}

TEST_CASE("delta plan falls back to a zstd op on data unlike the old image") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(100000, 41);
    std::string text = pseudo_random_bytes(100000, 42);
    delta::DeltaOptions opt;
    opt.op_size = 50000;
    Result r = round_trip(dir, old_image, text, opt);
    REQUIRE(r.image == text);
    REQUIRE(count(r, bundle::OpType::Zstd) + count(r, bundle::OpType::ZstdPatch) == 2);
}

TEST_CASE("delta plan refuses an op size out of bounds") {
    delta::DeltaOptions opt;
    opt.op_size = 0;
    REQUIRE_THROWS_AS(delta::encode_delta(nullptr, 0, nullptr, 0, opt, [](delta::EncodedOp&&) {}),
                      Error);
    opt.op_size = bundle::kMaxOpOutput + 1;
    REQUIRE_THROWS_AS(delta::encode_delta(nullptr, 0, nullptr, 0, opt, [](delta::EncodedOp&&) {}),
                      Error);
}

TEST_CASE("data with BL look-alikes but no returns is not taken for ARM64 code") {
    // Like the float weights of a model file: many words with a BL opcode, no RET anywhere.
    std::string code = fake_arm64_code(60000, 71);
    std::string weights = code;
    size_t returns = 0;
    for (size_t i = 0; i + 4 <= weights.size(); i += 4) {
        if (weights.compare(i, 4, std::string("\xc0\x03\x5f\xd6", 4)) == 0) {
            weights[i + 3] = static_cast<char>(0x94); // a BL look-alike in its place
            ++returns;
        }
    }
    REQUIRE(returns > 0);
    const auto* c = reinterpret_cast<const uint8_t*>(code.data());
    const auto* w = reinterpret_cast<const uint8_t*>(weights.data());
    REQUIRE(delta::arm64_call_density(w, weights.size()) >= 0.02);
    CHECK(delta::looks_like_arm64_code(c, code.size(), 0.02));
    CHECK_FALSE(delta::looks_like_arm64_code(w, weights.size(), 0.02));
    CHECK_FALSE(delta::looks_like_arm64_code(c, code.size(), 0.9)); // too few calls

    TempDir dir;
    std::string new_weights = weights;
    new_weights[1000] ^= 1;
    delta::DeltaOptions opt;
    opt.op_size = 65536;
    Result r = round_trip(dir, weights, new_weights, opt);
    REQUIRE(r.image == new_weights);
    for (const auto& op : r.ops)
        if (op.type == bundle::OpType::Diff) CHECK(!is_filtered(op.blob));
}

TEST_CASE("delta plan uses the ARM64 filter on ARM64-like code, and not when disabled") {
    TempDir dir;
    std::string old_image = fake_arm64_code(60000, 61);
    std::string new_image = fake_arm64_code(60000, 61, 30000, 2000);
    for (double density : {0.02, 0.0}) {
        INFO("min density " << density);
        delta::DeltaOptions opt;
        opt.op_size = 65539; // ops at unaligned offsets
        opt.arm64_min_call_density = density;
        Result r = round_trip(dir, old_image, new_image, opt);
        REQUIRE(r.image == new_image);
        size_t filtered = 0;
        for (const auto& op : r.ops)
            if (op.type == bundle::OpType::Diff && is_filtered(op.blob)) ++filtered;
        if (density > 0)
            REQUIRE(filtered > 0);
        else
            REQUIRE(filtered == 0);
    }
}

TEST_CASE("an op's candidates encoded on threads of their own give the same plan as in order") {
    // Two ops on eight threads: each op's Diff variants and zstd candidates get threads of their
    // own. The choice (smallest wins, the earlier candidate on a tie) must not depend on that.
    TempDir dir;
    for (const auto& pair : synthetic_pairs()) {
        INFO(pair.name);
        delta::DeltaOptions in_order, parallel;
        in_order.op_size = parallel.op_size =
            std::max<uint64_t>(1, (pair.new_image.size() + 1) / 2);
        in_order.threads = 1;
        parallel.threads = 8;
        Result a = round_trip(dir, pair.old_image, pair.new_image, in_order);
        Result b = round_trip(dir, pair.old_image, pair.new_image, parallel);
        REQUIRE(a.image == pair.new_image);
        REQUIRE(b.image == pair.new_image);
        REQUIRE(a.ops.size() == b.ops.size());
        for (size_t i = 0; i < a.ops.size(); ++i) {
            CHECK(a.ops[i].type == b.ops[i].type);
            CHECK(a.ops[i].blob == b.ops[i].blob);
            REQUIRE(a.ops[i].src_extents.size() == b.ops[i].src_extents.size());
            for (size_t e = 0; e < a.ops[i].src_extents.size(); ++e) {
                CHECK(a.ops[i].src_extents[e].offset == b.ops[i].src_extents[e].offset);
                CHECK(a.ops[i].src_extents[e].length == b.ops[i].src_extents[e].length);
            }
        }
    }
}

TEST_CASE("without the flagged layout the plan makes only the blobs older agents read") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(600000, 97);
    std::string new_image = old_image.substr(5000, 300000) + old_image.substr(0, 5000) +
                            old_image.substr(305000, 295000);
    new_image[100000] ^= 1;
    for (bool flagged : {true, false}) {
        INFO("flagged " << flagged);
        delta::DeltaOptions opt;
        opt.op_size = 200000;
        opt.flagged_diff = flagged;
        Result r = round_trip(dir, old_image, new_image, opt);
        REQUIRE(r.image == new_image);
        size_t flagged_blobs = 0, diffs = 0;
        for (const auto& op : r.ops) {
            if (op.type != bundle::OpType::Diff) continue;
            ++diffs;
            flagged_blobs += op.blob.compare(0, 8, "OTADIFF4") == 0;
        }
        REQUIRE(diffs > 0);
        if (flagged)
            REQUIRE(flagged_blobs > 0);
        else
            REQUIRE(flagged_blobs == 0);
    }
}
