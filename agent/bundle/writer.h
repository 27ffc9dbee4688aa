// Assembling bundles (publisher side). BundleWriter takes operations in write order, each with its
// blob, and writes preamble + canonical header + blobs. It fills in every derived field
// (dst_offset, data_offset, data_length, data_sha256, target_size, max_op_output) and validates the
// result with the same rules as the agent, so it never emits a bundle the agent would refuse.
//
// Emitting a delta (the delta builder does this):
//     BundleWriter w(out_path);
//     w.set_source({old_size, old_sha256});
//     w.add_copy({{src_off, len}});                         // dst = those source bytes
//     w.add_operation(OpType::ZstdPatch, dst_len, extents, frame.data(), frame.size());
//     w.add_operation(OpType::Diff, dst_len, extents, patch.data(), patch.size());
//     w.add_zero(len);
//     BundleInfo info = w.finish(digest_image(new_data, new_size, chunk_size));
// The dst ranges follow one another: each op writes the next dst_length bytes of the target.
#pragma once
#include "agent/bundle/format.h"
#include "agent/common/crypto.h"
#include "agent/common/fs.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ota::bundle {

// The target image's identity as the header carries it: its SHA-256 and, for a format 2 header,
// the SHA-256 of each chunk (chunk_size 0: format 1, the whole-image hash only).
struct ImageDigests {
    std::string sha256;
    uint64_t chunk_size = 0;
    std::vector<std::string> chunk_sha256;
};

// Computes ImageDigests in one pass over the image, fed in pieces of any size.
class ImageDigester {
public:
    explicit ImageDigester(uint64_t chunk_size);
    void update(const void* data, size_t size);
    ImageDigests finish();

private:
    uint64_t chunk_size_;
    uint64_t in_chunk_ = 0; // bytes of the current chunk hashed so far
    Hasher whole_;
    Hasher chunk_;
    ImageDigests out_;
};

ImageDigests digest_image(const void* data, uint64_t size, uint64_t chunk_size);

// The target chunk size for an image: the smallest power of two of at least min_chunk (itself a
// power of two within the header's bounds) that makes at most max_chunks chunks.
uint64_t pick_chunk_size(uint64_t image_size, uint64_t min_chunk, uint64_t max_chunks);

// What a publisher puts in the signed TUF target: custom "bundle" = {header_sha256, header_length},
// plus bundle_length / bundle_sha256 as the target's length and hashes.
struct BundleInfo {
    uint64_t bundle_length = 0;
    std::string bundle_sha256;
    uint64_t header_length = 0;
    std::string header_sha256;
    Header header;
};

class BundleWriter {
public:
    // Blobs are staged in a new out_path + ".blobs.tmp.*"; the bundle appears at out_path
    // atomically in finish(). Nothing is left behind if the writer is destroyed without finish().
    explicit BundleWriter(std::string out_path);
    ~BundleWriter();
    BundleWriter(const BundleWriter&) = delete;
    BundleWriter& operator=(const BundleWriter&) = delete;

    void set_payload_kind(const std::string& kind) { header_.payload_kind = kind; }
    void set_source(const SourceImage& source) { header_.source = source; }
    void set_files(std::vector<FileEntry> files) { header_.files = std::move(files); }
    // With per-chunk target hashes the header is format 3 (compact) unless this is false: then
    // format 2, for agents that predate format 3.
    void set_compact_header(bool compact) { compact_header_ = compact; }

    // Appends an operation writing the next dst_length target bytes. `blob` must be empty for
    // Zero and Copy and non-empty for the others.
    void add_operation(OpType type, uint64_t dst_length, std::vector<Extent> src_extents,
                       const void* blob, size_t blob_size);
    void add_zero(uint64_t length) { add_operation(OpType::Zero, length, {}, nullptr, 0); }
    void add_zstd(uint64_t dst_length, const void* frame, size_t frame_size) {
        add_operation(OpType::Zstd, dst_length, {}, frame, frame_size);
    }
    void add_copy(std::vector<Extent> src_extents);

    // Bytes of target covered so far.
    uint64_t target_size() const { return dst_end_; }
    const Header& header() const { return header_; }

    // Validates, writes the bundle atomically and returns its identity. With per-chunk hashes the
    // header is format 3 (or 2, see set_compact_header), else format 1 (agents older than format 2
    // read only format 1).
    BundleInfo finish(const ImageDigests& target);
    BundleInfo finish(const std::string& target_sha256) {
        return finish(ImageDigests{target_sha256});
    }

private:
    std::string out_path_;
    std::string blobs_path_;
    UniqueFd blobs_;
    Header header_;
    uint64_t dst_end_ = 0;
    uint64_t data_end_ = 0;
    bool compact_header_ = true;
    bool finished_ = false;
};

// Target chunk hashes of full bundles: 1 MiB chunks, larger so that there are at most 1024
// (header: 32 bytes per chunk in format 3, at most 33 KB; 67 in format 2).
inline constexpr uint64_t kFullBundleHashChunk = 1ull << 20;
inline constexpr uint64_t kFullBundleMaxHashChunks = 1024;

struct FullBundleOptions {
    // Target bytes per op (one zstd frame each); at most kMaxOpOutput. 2 MiB: on a 256 MiB ext4
    // root file system 5 % smaller bundles than 1 MiB frames (frames share no history), for 2 MiB
    // more agent memory (one op output and its blob); resume granularity is the checkpoint's.
    uint64_t chunk_size = 2ull << 20;
    // Per-chunk target hashes (format 3, or 2 with compact_header = false): 0 =
    // kFullBundleHashChunk, larger so there are at most kFullBundleMaxHashChunks.
    // target_chunk_hashes = false writes format 1 (older agents).
    uint64_t target_chunk_size = 0;
    bool target_chunk_hashes = true;
    bool compact_header = true;
    int zstd_level = 19;
    unsigned threads = 0; // compression threads; 0 = hardware concurrency
    std::string payload_kind = "firmware";
    std::vector<FileEntry> files;
};

// A full-image bundle: chunks that are entirely zero become Zero ops (runs of them merged up to
// kMaxOpOutput), the others Zstd ops, one independent frame per chunk.
BundleInfo build_full_bundle(const std::string& image_path, const std::string& out_path,
                             const FullBundleOptions& options = {});

} // namespace ota::bundle
