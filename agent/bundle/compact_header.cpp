#include "agent/bundle/compact_header.h"

#include "agent/bundle/header.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <iterator>
#include <memory>
#include <zstd.h>

namespace ota::bundle {

namespace {

constexpr size_t kHashSize = 32;
constexpr int kCompressionLevel = 19;

[[noreturn]] void malformed(const std::string& msg) {
    throw Error(ErrorKind::Malformed, "bundle header: " + msg);
}
[[noreturn]] void too_large(const std::string& msg) {
    throw Error(ErrorKind::TooLarge, "bundle header: " + msg);
}

// Op types on the wire, in this order (a new type means a new format).
constexpr OpType kWireTypes[] = {OpType::Zero, OpType::Zstd, OpType::Copy, OpType::ZstdPatch,
                                 OpType::Diff};

uint64_t wire_type(OpType type) {
    for (uint64_t i = 0; i < std::size(kWireTypes); ++i)
        if (kWireTypes[i] == type) return i;
    return 0;
}

// Signed offsets as unsigned varints (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...), in wrapping
// 64-bit arithmetic so that every pair of offsets has exactly one encoding.
uint64_t zigzag(uint64_t diff) {
    return (diff << 1) ^ (0 - (diff >> 63));
}
uint64_t unzigzag(uint64_t z) {
    return (z >> 1) ^ (0 - (z & 1));
}

class BodyWriter {
public:
    void u64(uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<char>(v));
    }
    void hash(const std::string& hex) {
        const std::vector<uint8_t> raw = from_hex(hex);
        out_.append(reinterpret_cast<const char*>(raw.data()), raw.size());
    }
    void bytes(const std::string& s) {
        u64(s.size());
        out_ += s;
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

class BodyReader {
public:
    explicit BodyReader(const std::string& in) : in_(in) {}
    size_t remaining() const { return in_.size() - pos_; }
    // Varints longer than needed are accepted here and refused by the canonical re-encoding.
    uint64_t u64(const char* field) {
        uint64_t v = 0;
        for (unsigned shift = 0;; shift += 7) {
            if (pos_ >= in_.size()) truncated(field);
            const auto b = static_cast<uint8_t>(in_[pos_++]);
            if (shift == 63 && b > 1) malformed(std::string(field) + " does not fit 64 bits");
            v |= static_cast<uint64_t>(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
    }
    std::string hash(const char* field) {
        if (remaining() < kHashSize) truncated(field);
        std::string hex = to_hex(reinterpret_cast<const uint8_t*>(in_.data() + pos_), kHashSize);
        pos_ += kHashSize;
        return hex;
    }
    std::string bytes(const char* field, size_t max) {
        const uint64_t n = u64(field);
        if (n > max) too_large(std::string(field) + " is longer than the limit");
        if (remaining() < n) truncated(field);
        std::string s = in_.substr(pos_, static_cast<size_t>(n));
        pos_ += static_cast<size_t>(n);
        return s;
    }
    // A count of entries that take at least min_entry bytes each: refused above `max`, and
    // above what the rest of the body could hold (so nothing is allocated for a lie).
    size_t count(const char* field, uint64_t max, size_t min_entry) {
        const uint64_t n = u64(field);
        if (n > max)
            too_large(std::string(field) + " is " + std::to_string(n) + ", more than " +
                      std::to_string(max));
        if (n > remaining() / min_entry) truncated(field);
        return static_cast<size_t>(n);
    }

private:
    [[noreturn]] static void truncated(const char* field) {
        malformed(std::string("body ends inside ") + field);
    }
    const std::string& in_;
    size_t pos_ = 0;
};

uint64_t chunk_count(uint64_t size, uint64_t chunk_size) {
    return size / chunk_size + (size % chunk_size != 0);
}

bool valid_chunk_size(uint64_t c) {
    return c >= kMinHashChunk && c <= kMaxHashChunk && (c & (c - 1)) == 0;
}

struct DCtxDeleter {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};
struct CCtxDeleter {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

} // namespace

bool is_compact_header(const std::string& bytes) {
    // The zstd frame magic number, 0xFD2FB528 little endian.
    return bytes.size() >= 4 && bytes.compare(0, 4, "\x28\xb5\x2f\xfd", 4) == 0;
}

std::string compact_body(const Header& h) {
    BodyWriter w;
    w.u64(h.format);
    w.u64(h.payload_kind == "model" ? 1 : 0);
    w.u64(h.target_size);
    w.hash(h.target_sha256);
    w.u64(h.target_chunk_size);
    // A single chunk is the whole image: its hash is target_sha256, not repeated.
    if (h.target_chunk_sha256.size() > 1)
        for (const std::string& c : h.target_chunk_sha256)
            w.hash(c);
    w.u64(h.source ? 1 : 0);
    if (h.source) {
        w.u64(h.source->size);
        w.hash(h.source->sha256);
        w.u64(h.source->chunk_size);
        if (h.source->chunk_size != 0) w.hash(h.source->chunk_root);
    }
    w.u64(h.max_op_output);
    w.u64(h.operations.size());
    for (const Operation& op : h.operations) {
        w.u64(wire_type(op.type));
        w.u64(op.dst_length);
        if (op_reads_source(op.type)) {
            w.u64(op.src_extents.size());
            // Each extent relative to where the previous one ended (the first: to the op's
            // dst_offset), so that a copy in place or a run of adjacent extents costs a zero.
            uint64_t cursor = op.dst_offset;
            for (const Extent& e : op.src_extents) {
                w.u64(zigzag(e.offset - cursor));
                w.u64(e.length);
                cursor = e.offset + e.length;
            }
        }
        if (op_has_blob(op.type)) {
            w.u64(op.data_length);
            w.hash(op.data_sha256);
        }
    }
    w.u64(h.files.size());
    for (const FileEntry& f : h.files) {
        w.bytes(f.path);
        w.u64(f.offset);
        w.u64(f.length);
        w.u64(f.mode);
    }
    // The hashes of the source chunks that no op reads, in chunk order: with the ones the agent
    // computes from the chunks the ops read, they must combine to chunk_root.
    if (h.source && h.source->chunk_size != 0)
        for (const std::string& c : h.source->chunk_sha256)
            if (!c.empty()) w.hash(c);
    return w.take();
}

Header parse_compact_body(const std::string& body) {
    if (body.size() > kMaxHeaderSize)
        too_large("body of " + std::to_string(body.size()) + " bytes exceeds the limit");
    BodyReader r(body);
    Header h;
    const uint64_t format = r.u64("format");
    if (format != kFormatCompact)
        malformed("format " + std::to_string(format) + " is not supported in a compact header");
    h.format = kFormatCompact;
    const uint64_t kind = r.u64("payload_kind");
    if (kind > 1) malformed("payload_kind " + std::to_string(kind) + " is not known");
    h.payload_kind = kind == 1 ? "model" : "firmware";
    h.target_size = r.u64("target_size");
    h.target_sha256 = r.hash("target_sha256");
    h.target_chunk_size = r.u64("target_chunk_size");
    if (!valid_chunk_size(h.target_chunk_size))
        malformed("target_chunk_size " + std::to_string(h.target_chunk_size) +
                  " is not a power of two between " + std::to_string(kMinHashChunk) + " and " +
                  std::to_string(kMaxHashChunk));
    const uint64_t target_chunks = chunk_count(h.target_size, h.target_chunk_size);
    if (target_chunks > kMaxHashChunks)
        too_large("target_chunk_sha256 would have " + std::to_string(target_chunks) +
                  " hashes, more than " + std::to_string(kMaxHashChunks));
    if (target_chunks == 1) {
        h.target_chunk_sha256 = {h.target_sha256};
    } else if (target_chunks > 1) {
        if (target_chunks > r.remaining() / kHashSize) malformed("body ends inside the chunk list");
        for (uint64_t i = 0; i < target_chunks; ++i)
            h.target_chunk_sha256.push_back(r.hash("target_chunk_sha256"));
    }
    const uint64_t has_source = r.u64("source flag");
    if (has_source > 1) malformed("source flag must be 0 or 1");
    if (has_source) {
        SourceImage s;
        s.size = r.u64("source.size");
        s.sha256 = r.hash("source.sha256");
        s.chunk_size = r.u64("source.chunk_size");
        if (s.chunk_size != 0) {
            if (!valid_chunk_size(s.chunk_size))
                malformed("source.chunk_size " + std::to_string(s.chunk_size) +
                          " is not a power of two between " + std::to_string(kMinHashChunk) +
                          " and " + std::to_string(kMaxHashChunk));
            const uint64_t n = chunk_count(s.size, s.chunk_size);
            if (n > kMaxHashChunks)
                too_large("source.chunk_sha256 would have " + std::to_string(n) +
                          " hashes, more than " + std::to_string(kMaxHashChunks));
            s.chunk_root = r.hash("source.chunk_root");
            s.chunk_sha256.resize(static_cast<size_t>(n));
        }
        h.source = std::move(s);
    }
    h.max_op_output = r.u64("max_op_output");
    // An op takes at least two bytes (type, dst_length).
    const size_t ops = r.count("operation count", kMaxOperations, 2);
    h.operations.reserve(ops);
    uint64_t dst = 0, data = 0;
    for (size_t i = 0; i < ops; ++i) {
        Operation op;
        const uint64_t type = r.u64("operation type");
        if (type >= std::size(kWireTypes))
            malformed("operations[" + std::to_string(i) + "].type is not a known operation kind");
        op.type = kWireTypes[type];
        op.dst_offset = dst;
        op.dst_length = r.u64("dst_length");
        if (op.dst_length > kMaxOpOutput)
            too_large("operations[" + std::to_string(i) + "].dst_length " +
                      std::to_string(op.dst_length) + " exceeds the limit " +
                      std::to_string(kMaxOpOutput));
        dst += op.dst_length; // each <= kMaxOpOutput, count <= kMaxOperations: no overflow
        if (op_reads_source(op.type)) {
            const size_t n = r.count("src_extents count", kMaxSourceExtents, 2);
            op.src_extents.reserve(n);
            uint64_t cursor = op.dst_offset;
            for (size_t k = 0; k < n; ++k) {
                Extent e;
                e.offset = cursor + unzigzag(r.u64("src_extents offset"));
                e.length = r.u64("src_extents length");
                op.src_extents.push_back(e);
                cursor = e.offset + e.length; // wraps only for extents validation refuses
            }
        }
        if (op_has_blob(op.type)) {
            op.data_offset = data;
            op.data_length = r.u64("data_length");
            if (op.data_length > kMaxBlobSize)
                too_large("operations[" + std::to_string(i) + "].data_length " +
                          std::to_string(op.data_length) + " exceeds the limit " +
                          std::to_string(kMaxBlobSize));
            data += op.data_length;
            op.data_sha256 = r.hash("data_sha256");
        }
        h.operations.push_back(std::move(op));
    }
    // A file takes at least five bytes (path length, one path byte, offset, length, mode).
    const size_t files = r.count("file count", kMaxFiles, 5);
    h.files.reserve(files);
    for (size_t i = 0; i < files; ++i) {
        FileEntry f;
        f.path = r.bytes("files.path", kMaxFilePathLength);
        f.offset = r.u64("files.offset");
        f.length = r.u64("files.length");
        const uint64_t mode = r.u64("files.mode");
        if (mode > 07777)
            malformed("files[" + std::to_string(i) + "].mode is not a permission mode");
        f.mode = static_cast<uint32_t>(mode);
        h.files.push_back(std::move(f));
    }
    if (h.source && h.source->chunk_size != 0) {
        // Extents beyond the source are refused by validate_header; here they mark nothing.
        const std::vector<bool> read = source_chunks_read(*h.source, h.operations);
        for (size_t c = 0; c < read.size(); ++c)
            if (!read[c]) h.source->chunk_sha256[c] = r.hash("source.chunk_sha256");
    }
    if (r.remaining() != 0)
        malformed(std::to_string(r.remaining()) + " bytes after the end of the header body");
    return h;
}

std::string compress_compact_body(const std::string& body) {
    std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
    if (!cctx) throw Error(ErrorKind::Io, "out of memory for the header compressor");
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, kCompressionLevel);
    ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, 1);
    std::string out(ZSTD_compressBound(body.size()), '\0');
    const size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), body.data(), body.size());
    if (ZSTD_isError(n))
        throw Error(ErrorKind::Io, std::string("header compression: ") + ZSTD_getErrorName(n));
    out.resize(n);
    return out;
}

std::string decompress_compact_header(const std::string& bytes) {
    if (bytes.size() > kMaxHeaderSize)
        too_large("length " + std::to_string(bytes.size()) + " exceeds the limit " +
                  std::to_string(kMaxHeaderSize));
    if (!is_compact_header(bytes)) malformed("not a zstd frame");
    const unsigned long long declared = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
    if (declared == ZSTD_CONTENTSIZE_ERROR || declared == ZSTD_CONTENTSIZE_UNKNOWN)
        malformed("the zstd frame does not declare its content size");
    if (declared > kMaxHeaderSize)
        too_large("the zstd frame declares " + std::to_string(declared) +
                  " bytes, more than the limit " + std::to_string(kMaxHeaderSize));
    const size_t frame = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
    if (ZSTD_isError(frame) || frame != bytes.size()) malformed("must be exactly one zstd frame");
    std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
    if (!dctx) throw Error(ErrorKind::Io, "out of memory for the header decompressor");
    ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, static_cast<int>(kMaxWindowLog));
    std::string body(static_cast<size_t>(declared), '\0');
    const size_t n =
        ZSTD_decompressDCtx(dctx.get(), body.data(), body.size(), bytes.data(), bytes.size());
    if (ZSTD_isError(n) || n != body.size())
        malformed(std::string("the zstd frame does not decode: ") +
                  (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "wrong size"));
    return body;
}

} // namespace ota::bundle
