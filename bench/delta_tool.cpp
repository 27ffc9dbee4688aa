// Benchmark driver for the delta codec, independent of the bundle container:
//   ota-delta-tool encode OLD NEW OUT [--op-size BYTES] [--level N] [--threads N] [--verbose]
//   ota-delta-tool apply OUT --source OLD --output NEW
//   ota-delta-tool publish OLD NEW BUNDLE [options as encode]   (real bundle via the writer)
//   ota-delta-tool install BUNDLE --source OLD --output NEW     (apply_bundle_file)
//   ota-delta-tool zstd-frames FILE LEVEL...   (zstd frames libzstd writes again exactly)
// OUT is a plain op stream (magic, source/target SHA-256, then per op: type, dst range, extents,
// blob). apply checks the source hash first and the output hash last, like the installer does,
// and holds one op output and one blob at a time. A developer's tool for the codec (op size,
// level, threads, verbose per-op output); bench/delta-bench.sh runs `ota-publish delta` and
// `ota-agent apply` themselves.
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/delta/delta_plan.h"
#ifdef OTA_DELTA_HAVE_BUNDLE_WRITER
#include "agent/bundle/apply_file.h"
#include "agent/bundle/installer.h"
#include "agent/delta/delta_bundle.h"
#endif
#include "agent/delta/diff.h"
#include "hal/block_device.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

using namespace ota;

namespace {

constexpr char kMagic[8] = {'O', 'T', 'A', 'D', 'B', 'N', 'C', '1'};

struct Mapped {
    const uint8_t* data = nullptr;
    uint64_t size = 0;
    explicit Mapped(const std::string& path) {
        UniqueFd fd = open_or_throw(path, O_RDONLY);
        struct stat st {};
        fstat(fd.get(), &st);
        size = static_cast<uint64_t>(st.st_size);
        if (size > 0) {
            void* p = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
            if (p == MAP_FAILED) throw Error(ErrorKind::Io, "mmap " + path);
            data = static_cast<const uint8_t*>(p);
        }
    }
    ~Mapped() {
        if (data) munmap(const_cast<uint8_t*>(data), size);
    }
};

void put64(std::string& s, uint64_t v) {
    s.append(reinterpret_cast<const char*>(&v), 8);
}

delta::DeltaOptions parse_options(int argc, char** argv) {
    delta::DeltaOptions opt;
    for (int i = 5; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--op-size" && i + 1 < argc)
            opt.op_size = std::stoull(argv[++i]);
        else if (a == "--level" && i + 1 < argc)
            opt.zstd_level = std::stoi(argv[++i]);
        else if (a == "--diff-level" && i + 1 < argc)
            opt.diff_level = std::stoi(argv[++i]);
        else if (a == "--threads" && i + 1 < argc)
            opt.threads = std::stoul(argv[++i]);
        else if (a == "--deflate-u" && i + 1 < argc)
            opt.deflate_op_u = std::stoull(argv[++i]);
        else if (a == "--deflate-source" && i + 1 < argc)
            opt.deflate_source = std::stoull(argv[++i]);
        else if (a == "--no-deflate")
            opt.deflate = false;
        else if (a == "--no-zstd-frames")
            opt.zstd_frames = false;
        else if (a == "--verbose")
            opt.verbose = true;
    }
    return opt;
}

void print_stats(const delta::DeltaStats& stats) {
    static const char* names[] = {"zero", "zstd", "copy", "zstd_patch", "diff"};
    for (int t = 0; t < 5; ++t)
        if (stats.ops[t])
            std::fprintf(stderr, " %s=%llu(%llu B)", names[t],
                         static_cast<unsigned long long>(stats.ops[t]),
                         static_cast<unsigned long long>(stats.blob_bytes[t]));
    std::fprintf(stderr, "\n");
}

int encode(int argc, char** argv) {
    delta::DeltaOptions opt = parse_options(argc, argv);
    Mapped old(argv[2]), nw(argv[3]);
    std::string out(kMagic, 8);
    out += file_sha256_hex(argv[2]);
    put64(out, old.size);
    out += file_sha256_hex(argv[3]);
    put64(out, nw.size);
    delta::DeltaStats stats;
    uint64_t count = 0, extents = 0;
    delta::encode_delta(
        old.data, old.size, nw.data, nw.size, opt,
        [&](delta::EncodedOp&& op) {
            out.push_back(static_cast<char>(op.type));
            put64(out, op.dst_offset);
            put64(out, op.dst_length);
            put64(out, op.src_extents.size());
            for (auto& e : op.src_extents) {
                put64(out, e.offset);
                put64(out, e.length);
            }
            put64(out, op.blob.size());
            out += op.blob;
            ++count;
            extents += op.src_extents.size();
        },
        &stats);
    write_file_atomic(argv[4], out);
    std::fprintf(stderr, "ops %llu extents %llu:", static_cast<unsigned long long>(count),
                 static_cast<unsigned long long>(extents));
    print_stats(stats);
    return 0;
}

uint64_t get64(int fd, uint64_t& at) {
    uint64_t v;
    pread_all(fd, &v, 8, at, "op stream");
    at += 8;
    return v;
}

int apply(const std::string& in, const std::string& source_path, const std::string& out_path) {
    UniqueFd fd = open_or_throw(in, O_RDONLY);
    uint64_t at = 0;
    char hdr[8 + 64];
    pread_all(fd.get(), hdr, sizeof(hdr), at, in);
    at += sizeof(hdr);
    if (std::memcmp(hdr, kMagic, 8) != 0) throw Error(ErrorKind::Malformed, "not an op stream");
    std::string src_sha(hdr + 8, 64);
    uint64_t src_size = get64(fd.get(), at);
    char tsha[64];
    pread_all(fd.get(), tsha, 64, at, in);
    at += 64;
    std::string dst_sha(tsha, 64);
    uint64_t dst_size = get64(fd.get(), at);
    auto source = hal::open_block_device(source_path, false);
    if (source->size() != src_size || file_sha256_hex(source_path) != src_sha)
        throw Error(ErrorKind::SourceMismatch, "source is not the image the delta was made for");
    { UniqueFd o = open_or_throw(out_path, O_RDWR | O_CREAT | O_TRUNC); }
    auto target = hal::open_block_device(out_path, true, dst_size);
    uint64_t total = file_size(in);
    std::vector<uint8_t> outbuf, blob, prefix;
    ZSTD_DCtx* dctx = ZSTD_createDCtx();
    Hasher hasher;
    while (at < total) {
        uint8_t type;
        pread_all(fd.get(), &type, 1, at++, in);
        uint64_t off = get64(fd.get(), at), len = get64(fd.get(), at);
        uint64_t n = get64(fd.get(), at);
        std::vector<bundle::Extent> ext(n);
        for (auto& e : ext) {
            e.offset = get64(fd.get(), at);
            e.length = get64(fd.get(), at);
        }
        uint64_t blen = get64(fd.get(), at);
        blob.resize(blen);
        pread_all(fd.get(), blob.data(), blen, at, in);
        at += blen;
        outbuf.resize(len);
        auto t = static_cast<bundle::OpType>(type);
        if (t == bundle::OpType::Zero) {
            std::memset(outbuf.data(), 0, len);
        } else if (t == bundle::OpType::Copy) {
            uint64_t w = 0;
            for (auto& e : ext) {
                source->read(e.offset, outbuf.data() + w, e.length);
                w += e.length;
            }
        } else if (t == bundle::OpType::Zstd || t == bundle::OpType::ZstdPatch) {
            if (t == bundle::OpType::ZstdPatch) {
                uint64_t plen = 0;
                for (auto& e : ext)
                    plen += e.length;
                prefix.resize(plen);
                uint64_t w = 0;
                for (auto& e : ext) {
                    source->read(e.offset, prefix.data() + w, e.length);
                    w += e.length;
                }
                ZSTD_DCtx_refPrefix(dctx, prefix.data(), prefix.size());
            }
            size_t r = ZSTD_decompressDCtx(dctx, outbuf.data(), len, blob.data(), blen);
            if (ZSTD_isError(r) || r != len) throw Error(ErrorKind::Malformed, "zstd op");
        } else {
            delta::apply_diff(blob.data(), blen, *source, ext, outbuf.data(), len);
        }
        target->write(off, outbuf.data(), len);
        hasher.update(outbuf.data(), len);
    }
    ZSTD_freeDCtx(dctx);
    target->sync();
    if (hasher.finish_hex() != dst_sha) throw Error(ErrorKind::HashMismatch, "output hash");
    return 0;
}

// How many of the zstd frames in a file (a squashfs image's blocks, say) the linked libzstd
// writes again byte for byte from their content at each level: what a delta through the
// decompressed blocks would need on the device.
int zstd_frames(const std::string& path, int argc, char** argv) {
    Mapped file(path);
    constexpr size_t kMaxFrameContent = 16u << 20;
    std::vector<uint8_t> content(kMaxFrameContent), again(ZSTD_compressBound(kMaxFrameContent));
    std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
    std::unique_ptr<ZSTD_CCtx, size_t (*)(ZSTD_CCtx*)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
    for (int a = 3; a < argc; ++a) {
        const int level = std::stoi(argv[a]);
        uint64_t frames = 0, frame_bytes = 0, exact = 0, exact_bytes = 0;
        for (uint64_t i = 0; i + 4 <= file.size; ++i) {
            if (std::memcmp(file.data + i, "\x28\xb5\x2f\xfd", 4) != 0) continue;
            const size_t frame = ZSTD_findFrameCompressedSize(file.data + i, file.size - i);
            if (ZSTD_isError(frame)) continue;
            const size_t n = ZSTD_decompressDCtx(dctx.get(), content.data(), content.size(),
                                                 file.data + i, frame);
            if (ZSTD_isError(n)) continue;
            ++frames;
            frame_bytes += frame;
            const size_t m =
                ZSTD_compressCCtx(cctx.get(), again.data(), again.size(), content.data(), n, level);
            if (!ZSTD_isError(m) && m == frame &&
                std::memcmp(again.data(), file.data + i, m) == 0) {
                ++exact;
                exact_bytes += frame;
            }
            i += frame - 1;
        }
        std::printf("level %d: %llu zstd frames (%llu bytes), %llu written again exactly (%llu "
                    "bytes), libzstd %s\n",
                    level, static_cast<unsigned long long>(frames),
                    static_cast<unsigned long long>(frame_bytes),
                    static_cast<unsigned long long>(exact),
                    static_cast<unsigned long long>(exact_bytes), ZSTD_versionString());
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        std::string cmd = argc > 1 ? argv[1] : "";
        if (cmd == "encode" && argc >= 5) return encode(argc, argv);
#ifdef OTA_DELTA_HAVE_BUNDLE_WRITER
        if (cmd == "publish" && argc >= 5) {
            delta::DeltaStats stats;
            auto info = delta::build_delta_bundle(argv[2], argv[3], argv[4],
                                                  parse_options(argc, argv), &stats);
            std::fprintf(stderr, "bundle %llu bytes (header %llu), ops %zu:",
                         static_cast<unsigned long long>(info.bundle_length),
                         static_cast<unsigned long long>(info.header_length),
                         info.header.operations.size());
            print_stats(stats);
            return 0;
        }
        if (cmd == "install" && argc == 7 && std::string(argv[3]) == "--source" &&
            std::string(argv[5]) == "--output") {
            bundle::register_apply_diff(delta::apply_diff);
            std::string source = argv[4], error;
            int rc = bundle::apply_bundle_file(argv[2], &source, argv[6], &error);
            if (rc != 0) std::fprintf(stderr, "error: %s\n", error.c_str());
            return rc;
        }
#endif
        if (cmd == "apply" && argc == 7 && std::string(argv[3]) == "--source" &&
            std::string(argv[5]) == "--output")
            return apply(argv[2], argv[4], argv[6]);
        if (cmd == "zstd-frames" && argc >= 4) return zstd_frames(argv[2], argc, argv);
        std::fprintf(
            stderr,
            "usage: ota-delta-tool encode OLD NEW OUT [--op-size B] [--level N] [--diff-level N] "
            "[--threads N] [--verbose]\n"
            "       ota-delta-tool apply OUT --source OLD --output NEW\n"
            "       ota-delta-tool zstd-frames FILE LEVEL...\n");
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
