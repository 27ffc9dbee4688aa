// Streaming installation of a bundle into a target slot, resumable per operation.
//
// Order of checks: target large enough and (for a delta) the source slot's hash, before anything is
// written; then per op: blob SHA-256 before decompression, decoded size exactly dst_length; the
// whole target is read back from the storage (its cached pages are dropped after each sync) and
// checked: chunk by chunk against target_chunk_sha256 (formats 2, 3), or hashed whole against
// target_sha256 (format 1).
//
// Threads: ops are decoded (blob read + hash + zstd) on a worker thread and written by the calling
// thread, while read-back threads verify what has been synced: one per core for formats 2, 3 (up to
// 4), one for format 1. The target's read/write/sync are serialized by a mutex; the source is
// only used by the decoder. Memory: one op output buffer, one blob buffer, the prefix of a
// ZstdPatch op, a 256 KiB buffer per read-back thread; all sized by the header's maxima (bounded
// in format.h), never by the image size.
#pragma once
#include "agent/bundle/format.h"
#include "agent/bundle/journal.h"
#include "agent/bundle/reader.h"
#include "hal/block_device.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace ota::bundle {

// Same signature as ota::delta::apply_diff (agent/delta/diff.h): the agent registers that one.
using ApplyDiffFn =
    std::function<void(const uint8_t* blob, size_t blob_size, hal::BlockDevice& source,
                       const std::vector<Extent>& allowed, uint8_t* out, size_t out_size)>;

// Process-wide Diff decoder used when InstallOptions::apply_diff is empty. The agent registers
// ota::delta::apply_diff at startup (the bundle library does not depend on the delta library).
void register_apply_diff(ApplyDiffFn fn);

struct InstallOptions {
    // Called on the calling thread after each op is written: (bytes written, target_size).
    std::function<void(uint64_t, uint64_t)> progress;
    // Needed for Diff ops (else the registered one); with neither, a Diff op fails with
    // Error(Unsupported) before any byte of it is written.
    ApplyDiffFn apply_diff;
    // The target is synced and the journal updated once at least this many bytes were written
    // since the last checkpoint (and after the last op). 0 = after every op.
    uint64_t checkpoint_bytes = 8ull << 20;
    // Test hook: called after op `index` was written to the target, before the checkpoint.
    std::function<void(size_t index)> after_op_written;
    // Asked before each op is written (the agent is stopping: SIGTERM). When it returns true the
    // ops written so far are synced and recorded in the journal, and install_bundle throws
    // Error(State); the next install of the same bundle resumes there.
    std::function<bool()> stop_requested;
};

struct InstallResult {
    size_t operations = 0;         // ops in the bundle
    size_t skipped = 0;            // ops already done according to the journal
    bool already_complete = false; // the journal said complete and the target still verified
};

// `source` may be null for a bundle without a source image. Throws ota::Error: TooLarge (target
// smaller than target_size), SourceMismatch (no/short/different source), HashMismatch (a blob, a
// read-back chunk, named in the message, or the final image), Malformed (a blob that does not
// decode to exactly dst_length), Unsupported (Diff without apply_diff), Io.
InstallResult install_bundle(const BlobSource& bundle, hal::BlockDevice* source,
                             hal::BlockDevice& target, InstallJournal& journal,
                             const InstallOptions& options = {});

// SHA-256 (hex) of the first `length` bytes of a device, read in large chunks.
std::string device_sha256(hal::BlockDevice& device, uint64_t length);

// Throws Error(SourceMismatch) unless `source` holds the image a delta was made against: the whole
// image's SHA-256 or, when the header lists per-chunk hashes, those of the chunks `ops` read.
void verify_source(const SourceImage& image, hal::BlockDevice& source,
                   const std::vector<Operation>& ops);

} // namespace ota::bundle
