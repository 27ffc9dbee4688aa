#include "agent/bundle/writer.h"

#include "agent/bundle/header.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <algorithm>
#include <fcntl.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <zstd.h>

namespace ota::bundle {

BundleWriter::BundleWriter(std::string out_path) : out_path_(std::move(out_path)) {
    blobs_ = create_temporary_beside(out_path_ + ".blobs", 0600, &blobs_path_);
}

BundleWriter::~BundleWriter() {
    if (blobs_) ::unlink(blobs_path_.c_str());
}

void BundleWriter::add_operation(OpType type, uint64_t dst_length, std::vector<Extent> src_extents,
                                 const void* blob, size_t blob_size) {
    if (finished_) throw Error(ErrorKind::State, "bundle writer already finished");
    if (op_has_blob(type) != (blob_size > 0))
        throw Error(ErrorKind::State, std::string("a ") + op_type_name(type) + " op " +
                                          (blob_size ? "takes no blob" : "needs a blob"));
    Operation op;
    op.type = type;
    op.dst_offset = dst_end_;
    op.dst_length = dst_length;
    op.src_extents = std::move(src_extents);
    if (blob_size > 0) {
        op.data_offset = data_end_;
        op.data_length = blob_size;
        op.data_sha256 = to_hex(sha256(blob, blob_size));
        write_all(blobs_.get(), blob, blob_size, blobs_path_);
        data_end_ += blob_size;
    }
    dst_end_ += dst_length;
    header_.max_op_output = std::max(header_.max_op_output, dst_length);
    header_.operations.push_back(std::move(op));
}

void BundleWriter::add_copy(std::vector<Extent> src_extents) {
    uint64_t total = 0;
    for (const Extent& e : src_extents)
        total += e.length;
    add_operation(OpType::Copy, total, std::move(src_extents), nullptr, 0);
}

ImageDigester::ImageDigester(uint64_t chunk_size) : chunk_size_(chunk_size) {
    out_.chunk_size = chunk_size;
}

void ImageDigester::update(const void* data, size_t size) {
    whole_.update(data, size);
    if (chunk_size_ == 0) return;
    const auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(size, chunk_size_ - in_chunk_));
        chunk_.update(p, n);
        in_chunk_ += n;
        p += n;
        size -= n;
        if (in_chunk_ == chunk_size_) {
            out_.chunk_sha256.push_back(chunk_.finish_hex());
            chunk_ = Hasher();
            in_chunk_ = 0;
        }
    }
}

ImageDigests ImageDigester::finish() {
    if (in_chunk_ > 0) out_.chunk_sha256.push_back(chunk_.finish_hex());
    in_chunk_ = 0;
    out_.sha256 = whole_.finish_hex();
    return std::move(out_);
}

ImageDigests digest_image(const void* data, uint64_t size, uint64_t chunk_size) {
    ImageDigester d(chunk_size);
    d.update(data, static_cast<size_t>(size));
    return d.finish();
}

uint64_t pick_chunk_size(uint64_t image_size, uint64_t min_chunk, uint64_t max_chunks) {
    uint64_t c = min_chunk;
    while (c < kMaxHashChunk && image_size > max_chunks * c)
        c *= 2;
    return c;
}

BundleInfo BundleWriter::finish(const ImageDigests& target) {
    if (finished_) throw Error(ErrorKind::State, "bundle writer already finished");
    header_.target_size = dst_end_;
    header_.target_sha256 = target.sha256;
    header_.format = !target.chunk_size ? kFormatWholeImageHash
                     : compact_header_  ? kFormatCompact
                                        : kFormatChunkHashes;
    header_.target_chunk_size = target.chunk_size;
    header_.target_chunk_sha256 = target.chunk_sha256;
    if (header_.format != kFormatCompact && header_.source && !header_.source->chunk_root.empty())
        throw Error(ErrorKind::State, "a source summed up by a chunk root (taken from a format 3 "
                                      "header) needs a format 3 header: per-chunk target hashes");
    if (header_.format == kFormatCompact && header_.source && header_.source->chunk_size != 0 &&
        header_.source->chunk_root.empty()) {
        // The agent computes the hashes of the chunks the ops read: only the others are carried.
        SourceImage& src = *header_.source;
        src.chunk_root = chunk_hash_root(src.chunk_sha256);
        const std::vector<bool> read = source_chunks_read(src, header_.operations);
        for (size_t i = 0; i < read.size(); ++i)
            if (read[i]) src.chunk_sha256[i].clear();
    }
    validate_header(header_);
    const std::string json = header_bytes(header_);
    if (json.size() > kMaxHeaderSize)
        throw Error(ErrorKind::TooLarge, "bundle header would be " + std::to_string(json.size()) +
                                             " bytes, more than the limit");

    BundleInfo info;
    info.header_length = json.size();
    info.header_sha256 = sha256_hex(json);
    Hasher whole;
    std::string tmp;
    {
        UniqueFd out = create_temporary_beside(out_path_, 0644, &tmp);
        try {
            uint8_t pre[kPreambleSize];
            std::copy(kMagic, kMagic + sizeof kMagic, pre);
            for (int i = 0; i < 8; ++i)
                pre[8 + i] = static_cast<uint8_t>(json.size() >> (8 * i));
            write_all(out.get(), pre, sizeof pre, tmp);
            whole.update(pre, sizeof pre);
            write_all(out.get(), json.data(), json.size(), tmp);
            whole.update(json);
            std::vector<uint8_t> buf(4 << 20);
            uint64_t copied = 0;
            while (copied < data_end_) {
                size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), data_end_ - copied));
                pread_all(blobs_.get(), buf.data(), n, copied, blobs_path_);
                write_all(out.get(), buf.data(), n, tmp);
                whole.update(buf.data(), n);
                copied += n;
            }
            fsync_or_throw(out.get(), tmp);
        } catch (...) {
            ::unlink(tmp.c_str());
            throw;
        }
    }
    rename_durable(tmp, out_path_);
    finished_ = true;
    blobs_ = UniqueFd();
    ::unlink(blobs_path_.c_str());
    info.bundle_length = kPreambleSize + json.size() + data_end_;
    info.bundle_sha256 = whole.finish_hex();
    info.header = header_;
    return info;
}

namespace {

struct ZstdCCtxDeleter {
    void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};

bool all_zero(const uint8_t* p, size_t n) {
    return n == 0 || (p[0] == 0 && std::equal(p, p + n - 1, p + 1));
}

} // namespace

BundleInfo build_full_bundle(const std::string& image_path, const std::string& out_path,
                             const FullBundleOptions& options) {
    if (options.chunk_size == 0 || options.chunk_size > kMaxOpOutput)
        throw Error(ErrorKind::Config,
                    "chunk size must be between 1 and " + std::to_string(kMaxOpOutput) + " bytes");
    const size_t chunk = static_cast<size_t>(options.chunk_size);
    unsigned threads = options.threads ? options.threads : std::thread::hardware_concurrency();
    threads = std::max(1u, std::min(threads, 16u));

    UniqueFd in = open_or_throw(image_path, O_RDONLY);
    BundleWriter writer(out_path);
    writer.set_payload_kind(options.payload_kind);
    writer.set_files(options.files);
    writer.set_compact_header(options.compact_header);
    uint64_t hash_chunk = 0;
    if (options.target_chunk_hashes) {
        struct stat st {};
        if (::fstat(in.get(), &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + image_path);
        hash_chunk = options.target_chunk_size
                         ? options.target_chunk_size
                         : pick_chunk_size(static_cast<uint64_t>(st.st_size), kFullBundleHashChunk,
                                           kFullBundleMaxHashChunks);
    }
    ImageDigester image_hash(hash_chunk);

    // Chunks are compressed `threads` at a time, each by its own thread and context, then
    // appended in order; a run of zero chunks is merged into one Zero op.
    std::vector<std::vector<uint8_t>> raw(threads), frames(threads);
    std::vector<std::unique_ptr<ZSTD_CCtx, ZstdCCtxDeleter>> cctx(threads);
    for (unsigned t = 0; t < threads; ++t) {
        raw[t].resize(chunk);
        cctx[t].reset(ZSTD_createCCtx());
        if (!cctx[t]) throw Error(ErrorKind::Io, "out of memory for a zstd context");
        ZSTD_CCtx_setParameter(cctx[t].get(), ZSTD_c_compressionLevel, options.zstd_level);
        ZSTD_CCtx_setParameter(cctx[t].get(), ZSTD_c_contentSizeFlag, 1);
        ZSTD_CCtx_setParameter(cctx[t].get(), ZSTD_c_checksumFlag, 0); // SHA-256 covers it
        // Levels up to 22 use windows of at most 2^27 = kMaxWindowLog, which the agent accepts.
    }
    uint64_t pending_zero = 0;
    auto flush_zero = [&] {
        if (pending_zero) writer.add_zero(pending_zero);
        pending_zero = 0;
    };
    bool eof = false;
    while (!eof) {
        std::vector<size_t> sizes(threads, 0);
        unsigned filled = 0;
        for (; filled < threads; ++filled) {
            sizes[filled] = read_full(in.get(), raw[filled].data(), chunk, image_path);
            image_hash.update(raw[filled].data(), sizes[filled]);
            if (sizes[filled] < chunk) eof = true;
            if (sizes[filled] == 0 || eof) {
                if (sizes[filled]) ++filled;
                break;
            }
        }
        std::vector<std::string> errors(filled);
        auto compress = [&](unsigned t) {
            if (all_zero(raw[t].data(), sizes[t])) {
                frames[t].clear();
                return;
            }
            frames[t].resize(ZSTD_compressBound(sizes[t]));
            size_t r = ZSTD_compress2(cctx[t].get(), frames[t].data(), frames[t].size(),
                                      raw[t].data(), sizes[t]);
            if (ZSTD_isError(r))
                errors[t] = ZSTD_getErrorName(r);
            else
                frames[t].resize(r);
        };
        std::vector<std::thread> pool;
        for (unsigned t = 1; t < filled; ++t)
            pool.emplace_back(compress, t);
        if (filled) compress(0);
        for (auto& th : pool)
            th.join();
        for (unsigned t = 0; t < filled; ++t) {
            if (!errors[t].empty())
                throw Error(ErrorKind::Io, "zstd compression failed: " + errors[t]);
            if (frames[t].empty()) {
                if (pending_zero + sizes[t] > kMaxOpOutput) flush_zero();
                pending_zero += sizes[t];
                continue;
            }
            flush_zero();
            if (frames[t].size() > kMaxBlobSize)
                throw Error(ErrorKind::TooLarge, "a compressed chunk exceeds the blob size limit; "
                                                 "use a smaller chunk size");
            writer.add_zstd(sizes[t], frames[t].data(), frames[t].size());
        }
    }
    flush_zero();
    return writer.finish(image_hash.finish());
}

} // namespace ota::bundle
