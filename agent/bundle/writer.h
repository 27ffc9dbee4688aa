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
//     BundleInfo info = w.finish(new_image_sha256);
// The dst ranges follow one another: each op writes the next dst_length bytes of the target.
#pragma once
#include "agent/bundle/format.h"
#include "agent/common/fs.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ota::bundle {

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

    // Validates, writes the bundle atomically and returns its identity.
    BundleInfo finish(const std::string& target_sha256);

private:
    std::string out_path_;
    std::string blobs_path_;
    UniqueFd blobs_;
    Header header_;
    uint64_t dst_end_ = 0;
    uint64_t data_end_ = 0;
    bool finished_ = false;
};

struct FullBundleOptions {
    uint64_t chunk_size = 1ull << 20; // target bytes per op; at most kMaxOpOutput
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
