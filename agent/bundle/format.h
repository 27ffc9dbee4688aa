// The bundle format (see manifests/BUNDLE.md). A bundle is:
//
//   offset 0   8 bytes   magic "OTABNDL1"
//   offset 8   8 bytes   header length H, little endian (at most kMaxHeaderSize)
//   offset 16  H bytes   header: canonical JSON (formats 1, 2) or a zstd frame (format 3)
//   offset 16+H          blob area: the data blobs of the operations, contiguous, in op order
//
// The SHA-256 and length of the header are in the signed TUF target, so once the header is
// verified every blob is checked against its own SHA-256 before it is decompressed or applied.
// Operations are in write order, each with a bounded output size.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ota::bundle {

inline constexpr char kMagic[8] = {'O', 'T', 'A', 'B', 'N', 'D', 'L', '1'};
inline constexpr uint64_t kPreambleSize = 16;
inline constexpr uint64_t kMaxHeaderSize = 16ull << 20; // 16 MiB
inline constexpr uint64_t kMaxOperations = 1u << 20;
inline constexpr uint64_t kMaxOpOutput = 64ull << 20; // bound on any op's dst_length
inline constexpr uint64_t kMaxBlobSize = 64ull << 20; // bound on any op's data_length
inline constexpr uint64_t kMaxSourceExtents = 4096;   // per operation
inline constexpr uint64_t kMaxFiles = 65536;
// Header formats this agent reads: 1, 2 = 1 plus the per-chunk target hashes, 3 = 2 in a
// compressed binary encoding (compact_header.h) whose source chunk hashes are summed up by a root.
inline constexpr uint32_t kFormatWholeImageHash = 1;
inline constexpr uint32_t kFormatChunkHashes = 2;
inline constexpr uint32_t kFormatCompact = 3;
// Per-chunk hashes of an image (the source's, the target's): the chunk size is a power of two
// between these sizes, with at most kMaxHashChunks chunks.
inline constexpr uint64_t kMinHashChunk = 64ull << 10;
inline constexpr uint64_t kMaxHashChunk = 1ull << 30;
inline constexpr uint64_t kMaxHashChunks = 65536;
inline constexpr uint64_t kMinSourceChunk = kMinHashChunk;
inline constexpr uint64_t kMaxSourceChunk = kMaxHashChunk;
inline constexpr uint64_t kMaxSourceChunks = kMaxHashChunks;
// Bound on the concatenated src_extents of one ZstdPatch op: the agent holds them in memory as the
// zstd prefix. (Copy is bounded by kMaxOpOutput; Diff reads the source through the device.)
inline constexpr uint64_t kMaxPatchSource = 64ull << 20;
inline constexpr unsigned kMaxWindowLog = 27; // zstd frames needing a larger window are refused
inline constexpr size_t kMaxFilePathLength = 1024;

enum class OpType {
    Zero,      // dst is filled with zero bytes; no blob
    Zstd,      // blob is one zstd frame that decompresses to exactly dst_length bytes
    Copy,      // dst = concatenation of src_extents of the source slot; no blob
    ZstdPatch, // blob is a zstd frame made with the concatenated src_extents as prefix dictionary
    Diff,      // blob is a bsdiff-class patch (agent/delta) reading only within src_extents
};

// "zero", "zstd", "copy", "zstd_patch", "diff": the spellings used in the header JSON.
const char* op_type_name(OpType type);
// True when the op carries a data blob (Zstd, ZstdPatch, Diff).
bool op_has_blob(OpType type);
// True when the op reads the source slot (Copy, ZstdPatch, Diff).
bool op_reads_source(OpType type);

struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
};

struct Operation {
    OpType type = OpType::Zero;
    uint64_t dst_offset = 0;
    uint64_t dst_length = 0;
    std::vector<Extent> src_extents;
    uint64_t data_offset = 0; // relative to the blob area
    uint64_t data_length = 0;
    std::string data_sha256; // hex; empty when data_length == 0
};

// The image a delta was made against: the agent checks it before writing anything. With
// per-chunk hashes it checks only the chunks the operations read (in parallel), which is as safe
// (no other source byte reaches the target) and much faster when most of the new image is new.
//
// Format 3 carries chunk_root, the SHA-256 of all the chunk hashes (32 raw bytes each, in chunk
// order), and lists only the hashes of the chunks no op reads (chunk_sha256[i] is "" for the
// others): the agent hashes the chunks the ops read, fills them in and compares the root. A tiny
// delta, whose copies read every chunk, then carries one hash instead of one per chunk.
struct SourceImage {
    uint64_t size = 0;
    std::string sha256;      // the whole image: names the version the delta applies to
    uint64_t chunk_size = 0; // 0: no per-chunk hashes
    std::vector<std::string> chunk_sha256; // chunk i = bytes [i*chunk_size, min(size, (i+1)*..))
    std::string chunk_root;                // format 3 only (hex), with chunk_size != 0
};

// For payloads made of files (AI models): the target image is the concatenation of the files.
struct FileEntry {
    std::string path; // relative, no "..", no leading '/'
    uint64_t offset = 0;
    uint64_t length = 0;
    uint32_t mode = 0644;
};

struct Header {
    uint32_t format = kFormatWholeImageHash;
    std::string payload_kind = "firmware"; // "firmware" or "model"
    uint64_t target_size = 0;
    std::string target_sha256; // whole-image hash (format 1: checked on the read-back image)
    // Formats 2 and 3 (format 1: none): the SHA-256 of each target_chunk_size-byte chunk of the
    // image (the last one shorter). The agent checks the read-back image chunk by chunk, on all
    // cores; the header binds these hashes and target_sha256 to the same signed identity.
    uint64_t target_chunk_size = 0;
    std::vector<std::string> target_chunk_sha256;
    std::optional<SourceImage> source; // present for delta bundles
    uint64_t max_op_output = 0;        // largest dst_length of any op
    std::vector<Operation> operations;
    std::vector<FileEntry> files;
};

} // namespace ota::bundle
