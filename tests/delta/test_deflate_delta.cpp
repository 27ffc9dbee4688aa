// Deflate streams and zstd frames inside images: delta bundles rebuild them from their
// decompressed bytes through the real installer, corrupt streams go to the plain ops, and a
// corrupted deflate op is refused with nothing of it (or after it) written.
#include "agent/bundle/installer.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/error.h"
#include "agent/deflate/varint.h"
#include "agent/delta/deflate_diff_format.h"
#include "agent/delta/delta_bundle.h"
#include "agent/delta/diff.h"
#include "agent/delta/diff_encode.h"
#include "agent/delta/memory_source.h"
#include "deflate/deflate_test_util.h"
#include "delta_test_util.h"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <functional>

using namespace ota;
using namespace ota::test;

namespace {

void put32(std::string& s, uint32_t v) {
    for (int i = 0; i < 4; ++i)
        s.push_back(static_cast<char>(v >> (8 * i)));
}

uint32_t crc_of(const std::string& d) {
    return static_cast<uint32_t>(
        crc32(crc32(0, Z_NULL, 0), bytes_of(d), static_cast<uInt>(d.size())));
}

// A gzip member as GNU gzip -n writes it, with zlib's deflate at `level` inside.
std::string gzip_member(const std::string& data, int level) {
    std::string m("\x1f\x8b\x08\0\0\0\0\0\x02\x03", 10);
    m += zlib_deflate(data, level);
    put32(m, crc_of(data));
    put32(m, static_cast<uint32_t>(data.size()));
    return m;
}

// A zip local file entry (method 8) for data.
std::string zip_entry(const std::string& name, const std::string& data) {
    const std::string body = zlib_deflate(data, 6);
    std::string m("PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0", 14);
    put32(m, crc_of(data));
    put32(m, static_cast<uint32_t>(body.size()));
    put32(m, static_cast<uint32_t>(data.size()));
    m.push_back(static_cast<char>(name.size()));
    m.push_back('\0');
    m += std::string(2, '\0');
    return m + name + body;
}

// The "same software, a new version": bytes inserted, changed and removed here and there.
std::string edited(std::string s, uint64_t seed) {
    for (size_t i = 1000; i + 100 < s.size(); i += 9000 + seed * 77)
        s[i] = static_cast<char>(s[i] + 1);
    s.insert(s.size() / 3, pseudo_random_bytes(300, seed));
    s.erase(s.size() * 2 / 3, 500);
    return s;
}

struct Images {
    std::string old_image, new_image;
};

// Images with a gzip'd payload, three zip members and plain bytes around them.
Images deflate_images() {
    const std::string kernel = sample_data(400000, 51), lib1 = sample_data(60000, 52),
                      lib2 = sample_data(90000, 53), lib3 = sample_data(3000, 54);
    const std::string head = pseudo_random_bytes(20000, 55), gap = pseudo_random_bytes(5000, 56);
    Images im;
    im.old_image = head + gzip_member(kernel, 9) + gap + zip_entry("lib/a.so", lib1) +
                   zip_entry("lib/b.so", lib2) + zip_entry("etc/c.txt", lib3) + head;
    im.new_image = head + gzip_member(edited(kernel, 1), 9) + gap +
                   zip_entry("lib/a.so", edited(lib1, 2)) + zip_entry("lib/b.so", lib2) +
                   zip_entry("etc/c.txt", edited(lib3, 3)) + head;
    return im;
}

// Small ops, so streams are cut into several ops (and cut inside blocks).
delta::DeltaOptions small_ops() {
    delta::DeltaOptions opt;
    opt.op_size = 64 << 10;
    opt.deflate_op_u = 160 << 10;
    opt.deflate_source = 256 << 10;
    return opt;
}

std::string install(const TempDir& dir, size_t target_size, char fill,
                    bundle::InstallOptions options = {}) {
    write_all_file(dir.file("target"), std::string(target_size, fill));
    auto bundle = bundle::BundleFile::open_self_verified(dir.file("bundle"));
    auto source = hal::open_block_device(dir.file("old"), false);
    auto target = hal::open_block_device(dir.file("target"), true);
    bundle::InstallJournal journal(dir.file("journal"));
    options.apply_diff = delta::apply_diff;
    bundle::install_bundle(bundle, source.get(), *target, journal, options);
    return read_all(dir.file("target"));
}

bool is_deflate_blob(const std::vector<uint8_t>& blob) {
    return blob.size() >= 8 && std::memcmp(blob.data(), delta::format::kMagicDeflate, 8) == 0;
}

} // namespace

TEST_CASE("deflate streams delta through their decompressed bytes, byte-exact") {
    TempDir dir;
    const Images im = deflate_images();
    write_all_file(dir.file("old"), im.old_image);
    write_all_file(dir.file("new"), im.new_image);
    delta::DeltaStats stats, plain_stats;
    delta::DeltaOptions plain = small_ops();
    plain.deflate = false;
    const auto without = delta::build_delta_bundle(dir.file("old"), dir.file("new"),
                                                   dir.file("plain"), plain, &plain_stats);
    const auto with = delta::build_delta_bundle(dir.file("old"), dir.file("new"),
                                                dir.file("bundle"), small_ops(), &stats);
    REQUIRE(plain_stats.deflate_ops == 0);
    REQUIRE(stats.deflate_ops >= 4); // the gzip payload alone needs several ops
    REQUIRE(stats.deflate_fallbacks == 0);
    // Plain ops see compressed bytes that all changed; deflate ops see the few edits.
    REQUIRE(with.bundle_length * 8 < without.bundle_length);
    REQUIRE(install(dir, im.new_image.size(), '\x55') == im.new_image);
}

TEST_CASE("GNU gzip and zlib payloads at every level come back exactly") {
    const std::string data = sample_data(200000, 57);
    for (int level = 1; level <= 9; level += 4) {
        for (bool gnu : {false, true}) {
            INFO("level " << level << (gnu ? " GNU gzip" : " zlib"));
            TempDir dir;
            const std::string old_member = gnu ? gnu_gzip(data, level) : gzip_member(data, level);
            const std::string new_data = edited(data, 4);
            const std::string new_member =
                gnu ? gnu_gzip(new_data, level) : gzip_member(new_data, level);
            write_all_file(dir.file("old"), old_member);
            write_all_file(dir.file("new"), new_member);
            delta::DeltaStats stats;
            const auto info = delta::build_delta_bundle(dir.file("old"), dir.file("new"),
                                                        dir.file("bundle"), small_ops(), &stats);
            REQUIRE(stats.deflate_ops > 0);
            REQUIRE(info.bundle_length < new_member.size() / 10);
            REQUIRE(install(dir, new_member.size(), '\0') == new_member);
        }
    }
}

TEST_CASE("corrupt deflate streams are left to the plain ops") {
    TempDir dir;
    const std::string data = sample_data(150000, 58);
    std::string old_member = gzip_member(data, 9), new_member = gzip_member(edited(data, 5), 9);
    SECTION("a damaged byte inside the new stream") {
        new_member[new_member.size() / 2] ^= 0x20;
    }
    SECTION("a wrong CRC in the new member's trailer") {
        new_member[new_member.size() - 6] ^= 0x01;
    }
    SECTION("a damaged old stream") {
        old_member[old_member.size() / 2] ^= 0x20;
    }
    const std::string image_old = pseudo_random_bytes(3000, 59) + old_member;
    const std::string image_new = pseudo_random_bytes(3000, 59) + new_member;
    write_all_file(dir.file("old"), image_old);
    write_all_file(dir.file("new"), image_new);
    delta::DeltaStats stats;
    delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"), small_ops(),
                              &stats);
    REQUIRE(stats.deflate_ops == 0);
    REQUIRE(install(dir, image_new.size(), '\x11') == image_new);
}

TEST_CASE("a corrupted deflate op is refused with nothing written from it on") {
    TempDir dir;
    const Images im = deflate_images();
    write_all_file(dir.file("old"), im.old_image);
    write_all_file(dir.file("new"), im.new_image);
    delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("good"), small_ops());
    auto good = bundle::BundleFile::open_self_verified(dir.file("good"));
    const auto& ops = good.header().operations;
    // The third deflate op: ops before it are written, it and those after must not be.
    size_t victim = ops.size();
    std::vector<uint8_t> blob;
    for (size_t i = 0, seen = 0; i < ops.size() && victim == ops.size(); ++i) {
        if (ops[i].type != bundle::OpType::Diff) continue;
        good.read_blob(i, blob);
        if (is_deflate_blob(blob) && ++seen == 3) victim = i;
    }
    REQUIRE(victim < ops.size());
    const bundle::Operation op = ops[victim];

    bundle::InstallOptions options;
    options.checkpoint_bytes = 0;
    std::string message;
    SECTION("a flipped byte: its hash does not match") {
        std::string bytes = read_all(dir.file("good"));
        const uint64_t area = bytes.size() - (ops.back().data_offset + ops.back().data_length);
        bytes[area + op.data_offset + op.data_length / 2] ^= 0x01;
        write_all_file(dir.file("bundle"), bytes);
        try {
            install(dir, im.new_image.size(), '\x77', options);
            FAIL("installed a corrupted bundle");
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::HashMismatch);
        }
    }
    SECTION("a blob signed as it is, but inconsistent: refused as malformed") {
        // Rebuilt with the writer, so every hash matches the damaged blob.
        bundle::BundleWriter w(dir.file("bundle"));
        w.set_source(*good.header().source);
        for (size_t i = 0; i < ops.size(); ++i) {
            blob.clear();
            if (bundle::op_has_blob(ops[i].type)) good.read_blob(i, blob);
            if (i == victim) blob.pop_back(); // the plan's zstd frame loses its last byte
            w.add_operation(ops[i].type, ops[i].dst_length, ops[i].src_extents, blob.data(),
                            blob.size());
        }
        const bundle::Header& h = good.header();
        w.finish(bundle::ImageDigests{h.target_sha256, h.target_chunk_size, h.target_chunk_sha256});
        try {
            install(dir, im.new_image.size(), '\x77', options);
            FAIL("installed a malformed deflate op");
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::Malformed);
        }
    }
    const std::string target = read_all(dir.file("target"));
    REQUIRE(target.substr(0, op.dst_offset) == im.new_image.substr(0, op.dst_offset));
    REQUIRE(target.substr(op.dst_offset) ==
            std::string(im.new_image.size() - op.dst_offset, '\x77'));
}

TEST_CASE("a deflate op reads the source only inside its extents") {
    TempDir dir;
    const Images im = deflate_images();
    write_all_file(dir.file("old"), im.old_image);
    write_all_file(dir.file("new"), im.new_image);
    delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"), small_ops());
    auto b = bundle::BundleFile::open_self_verified(dir.file("bundle"));
    RecordingDevice source(hal::open_block_device(dir.file("old"), false));
    std::vector<uint8_t> blob;
    size_t checked = 0;
    for (size_t i = 0; i < b.header().operations.size(); ++i) {
        const auto& op = b.header().operations[i];
        if (op.type != bundle::OpType::Diff) continue;
        b.read_blob(i, blob);
        if (!is_deflate_blob(blob)) continue;
        source.reads.clear();
        std::vector<uint8_t> out(op.dst_length);
        delta::apply_diff(blob.data(), blob.size(), source, op.src_extents, out.data(), out.size());
        REQUIRE(std::memcmp(out.data(), im.new_image.data() + op.dst_offset, out.size()) == 0);
        REQUIRE_FALSE(source.reads.empty());
        REQUIRE(source.reads_within(op.src_extents));
        // Narrower extents than the op needs are refused before reading.
        source.reads.clear();
        std::vector<bundle::Extent> narrow = op.src_extents;
        narrow.back().length -= 1;
        REQUIRE_THROWS_AS(
            delta::apply_diff(blob.data(), blob.size(), source, narrow, out.data(), out.size()),
            Error);
        REQUIRE(source.reads.empty());
        ++checked;
    }
    REQUIRE(checked >= 4);
}

TEST_CASE("an install with deflate ops killed after any op resumes to the exact image") {
    TempDir dir;
    const Images im = deflate_images();
    write_all_file(dir.file("old"), im.old_image);
    write_all_file(dir.file("new"), im.new_image);
    const auto info = delta::build_delta_bundle(dir.file("old"), dir.file("new"),
                                                dir.file("bundle"), small_ops());
    const size_t ops = info.header.operations.size();
    for (size_t kill_at = 0; kill_at < ops; kill_at += std::max<size_t>(1, ops / 3)) {
        INFO("killed after op " << kill_at);
        write_all_file(dir.file("target"), std::string(im.new_image.size(), '\x55'));
        remove_file_durable(dir.file("journal"));
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            try {
                auto bundle = bundle::BundleFile::open_self_verified(dir.file("bundle"));
                auto source = hal::open_block_device(dir.file("old"), false);
                auto target = hal::open_block_device(dir.file("target"), true);
                bundle::InstallJournal journal(dir.file("journal"));
                bundle::InstallOptions options;
                options.apply_diff = delta::apply_diff;
                options.checkpoint_bytes = 0;
                options.after_op_written = [&](size_t index) {
                    if (index == kill_at) _exit(42);
                };
                bundle::install_bundle(bundle, source.get(), *target, journal, options);
            } catch (...) {
                _exit(1);
            }
            _exit(0);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 42);
        auto bundle = bundle::BundleFile::open_self_verified(dir.file("bundle"));
        auto source = hal::open_block_device(dir.file("old"), false);
        auto target = hal::open_block_device(dir.file("target"), true);
        bundle::InstallJournal journal(dir.file("journal"));
        bundle::InstallOptions options;
        options.apply_diff = delta::apply_diff;
        auto result = bundle::install_bundle(bundle, source.get(), *target, journal, options);
        REQUIRE(result.skipped <= kill_at + 1);
        target.reset();
        REQUIRE(read_all(dir.file("target")) == im.new_image);
    }
}

namespace {

// Zstd frames as mksquashfs writes its blocks: ZSTD_compressCCtx at one level, block by block.
std::string zstd_blocks(const std::string& data, int level, bool checksum = false,
                        size_t block = 128 << 10) {
    std::string out;
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, checksum ? 1 : 0);
    for (size_t at = 0; at < data.size(); at += block) {
        const size_t n = std::min(block, data.size() - at);
        std::string f(ZSTD_compressBound(n), '\0');
        const size_t made = ZSTD_compress2(c, f.data(), f.size(), data.data() + at, n);
        REQUIRE_FALSE(ZSTD_isError(made));
        f.resize(made);
        out += f;
    }
    ZSTD_freeCCtx(c);
    return out;
}

// Text whose lines are all different, as file contents mostly are between the blocks of a file
// system (sample_data repeats its pieces, so every block would look like every other).
std::string distinct_lines(size_t size) {
    std::string out;
    for (uint64_t n = 0; out.size() < size; ++n)
        out += "record " + std::to_string(n) + " sum " + std::to_string(n * 2654435761u % 1000003) +
               " state ok\n";
    out.resize(size);
    return out;
}

Images zstd_images(int level, bool checksum = false) {
    const std::string files = distinct_lines(700000);
    const std::string head = pseudo_random_bytes(12000, 61), tail = pseudo_random_bytes(9000, 62);
    return {head + zstd_blocks(files, level, checksum) + tail,
            head + zstd_blocks(edited(files, 7), level, checksum) + tail};
}

struct DeltaSizes {
    uint64_t with_frames, without_frames, deflate_ops;
};

DeltaSizes zstd_delta(const TempDir& dir, const Images& im) {
    write_all_file(dir.file("old"), im.old_image);
    write_all_file(dir.file("new"), im.new_image);
    delta::DeltaOptions plain = small_ops();
    plain.zstd_frames = false;
    delta::DeltaStats stats;
    const auto without =
        delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("plain"), plain);
    const auto with = delta::build_delta_bundle(dir.file("old"), dir.file("new"),
                                                dir.file("bundle"), small_ops(), &stats);
    return {with.bundle_length, without.bundle_length, stats.deflate_ops};
}

// The first deflate Diff blob of the delta from im.old_image to im.new_image.
delta::EncodedOp first_frame_op(const Images& im) {
    delta::EncodedOp found;
    delta::encode_delta(bytes_of(im.old_image), im.old_image.size(), bytes_of(im.new_image),
                        im.new_image.size(), small_ops(), [&](delta::EncodedOp&& op) {
                            if (op.deflate && found.blob.empty()) found = std::move(op);
                        });
    REQUIRE_FALSE(found.blob.empty());
    return found;
}

// The blob with its plan's zstd frame segments changed by `edit(level, version, length)`;
// `source_kinds` gets the kinds of its sources.
std::string with_frame_segments(const std::string& blob,
                                const std::function<void(uint64_t&, uint64_t&, uint64_t&)>& edit,
                                std::vector<uint64_t>* source_kinds = nullptr) {
    deflate::ByteReader in(bytes_of(blob) + 8, blob.size() - 8, "test");
    std::string head = blob.substr(0, 8);
    auto copy = [&] {
        const uint64_t v = in.varint();
        deflate::put_varint(head, v);
        return v;
    };
    copy(); // out_size
    copy(); // u_size
    copy(); // origin
    const uint64_t sources = copy();
    for (uint64_t i = 0; i < sources; ++i) {
        const uint64_t kind = copy();
        if (source_kinds) source_kinds->push_back(kind);
        copy();
        copy();
        if (kind != 0) {
            copy();
            copy();
        }
    }
    const uint64_t diff_length = copy();
    head.append(reinterpret_cast<const char*>(in.bytes(diff_length)), diff_length);
    const uint64_t plan_raw = in.varint();
    const uint64_t plan_packed = in.varint();
    std::string plan(plan_raw, '\0');
    REQUIRE(ZSTD_decompress(plan.data(), plan.size(), in.bytes(plan_packed), plan_packed) ==
            plan_raw);
    deflate::ByteReader p(bytes_of(plan), plan.size(), "test plan");
    std::string edited_plan;
    const uint64_t segments = p.varint();
    deflate::put_varint(edited_plan, segments);
    for (uint64_t i = 0; i < segments; ++i) {
        const uint64_t kind = p.varint();
        REQUIRE(kind != 1); // these images have no deflate pieces
        deflate::put_varint(edited_plan, kind);
        if (kind == 0) {
            deflate::put_varint(edited_plan, p.varint());
            continue;
        }
        uint64_t level = p.varint(), version = p.varint(), length = p.varint();
        edit(level, version, length);
        deflate::put_varint(edited_plan, level);
        deflate::put_varint(edited_plan, version);
        deflate::put_varint(edited_plan, length);
    }
    const std::string packed = delta::zstd_compress(bytes_of(edited_plan), edited_plan.size(), 3);
    deflate::put_varint(head, edited_plan.size());
    deflate::put_varint(head, packed.size());
    return head + packed;
}

std::vector<uint8_t> apply_blob(const std::string& blob, const Images& im,
                                const delta::EncodedOp& op) {
    delta::MemorySource source(0, bytes_of(im.old_image), im.old_image.size());
    std::vector<uint8_t> out(op.dst_length);
    delta::apply_diff(bytes_of(blob), blob.size(), source, op.src_extents, out.data(), out.size());
    return out;
}

} // namespace

TEST_CASE("zstd frames made at a plain level delta through their decompressed bytes, exactly") {
    // mksquashfs's default (15), zstd's (3) and a high one (19).
    for (int level : {15, 3, 19}) {
        INFO("level " << level);
        TempDir dir;
        const Images im = zstd_images(level);
        const DeltaSizes sizes = zstd_delta(dir, im);
        REQUIRE(sizes.deflate_ops >= 2);
        // Every frame changed, so the plain ops pay for nearly all of them again.
        REQUIRE(sizes.with_frames * 5 < sizes.without_frames);
        REQUIRE(install(dir, im.new_image.size(), '\x33') == im.new_image);
    }
}

TEST_CASE("zstd frames no plain level makes again are left to the plain ops") {
    TempDir dir;
    Images im = zstd_images(15, /*checksum=*/true); // ZSTD_compressCCtx writes no checksum
    SECTION("frames with a checksum") {}
    SECTION("a corrupt new frame among frames with a checksum") {
        im.new_image[im.new_image.size() / 2] ^= 0x40;
    }
    const DeltaSizes sizes = zstd_delta(dir, im);
    REQUIRE(sizes.deflate_ops == 0);
    REQUIRE(sizes.with_frames == sizes.without_frames);
    REQUIRE(install(dir, im.new_image.size(), '\x44') == im.new_image);
}

TEST_CASE("a zstd frame segment for another libzstd, level or length is refused") {
    const Images im = zstd_images(15);
    const delta::EncodedOp op = first_frame_op(im);
    std::vector<uint64_t> kinds;
    const std::string same = with_frame_segments(
        op.blob, [](auto&, auto&, auto&) {}, &kinds);
    // The old frames are the sources, decompressed; the unchanged blob rebuilds the op.
    REQUIRE(std::count(kinds.begin(), kinds.end(),
                       static_cast<uint64_t>(delta::format::SourceKind::ZstdFrame)) >= 1);
    const std::vector<uint8_t> out = apply_blob(same, im, op);
    REQUIRE(std::memcmp(out.data(), im.new_image.data() + op.dst_offset, out.size()) == 0);

    SECTION("another libzstd version: refused as unsupported, naming both versions") {
        const std::string blob =
            with_frame_segments(op.blob, [](auto&, uint64_t& version, auto&) { version += 1; });
        try {
            apply_blob(blob, im, op);
            FAIL("applied a frame made for another libzstd");
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::Unsupported);
            REQUIRE_THAT(e.what(),
                         Catch::Contains("libzstd " + std::to_string(ZSTD_versionNumber() + 1)));
        }
    }
    SECTION("levels zstd does not have, or that need too much memory") {
        for (uint64_t bad : {uint64_t{0}, uint64_t{23}, uint64_t{65}, uint64_t{1} << 40}) {
            INFO("level " << bad);
            const std::string blob =
                with_frame_segments(op.blob, [bad](uint64_t& level, auto&, auto&) { level = bad; });
            REQUIRE_THROWS_AS(apply_blob(blob, im, op), Error);
        }
    }
    SECTION("a frame longer than the decompressed bytes left") {
        const std::string blob =
            with_frame_segments(op.blob, [](auto&, auto&, uint64_t& length) { length += 1; });
        try {
            apply_blob(blob, im, op);
            FAIL("applied a frame past the decompressed bytes");
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::Malformed);
        }
    }
}
