#include "agent/bundle/installer.h"

#include "agent/bundle/header.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/log.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <zstd.h>

namespace ota::bundle {

namespace {

// Read back (and hash the source) in small pieces: the hash speed is the same and the peak memory
// of an apply stays at one op output, a blob and a ZstdPatch prefix of up to two ops.
constexpr size_t kReadBackChunk = 256u << 10;
constexpr size_t kZeroChunk = 1u << 20;
// Decoded ops in flight. One: writing an op to the page cache is quick next to decoding it, and
// a second buffer cost 2 MiB of peak RSS with no measurable speed-up (kernel pair: 0.64-0.82 s
// with one, 0.71-0.79 s with two); the read-back hashing still runs alongside the decoder.
constexpr size_t kSlots = 1;

std::string op_label(size_t i, const Operation& op) {
    return "operation " + std::to_string(i) + " (" + op_type_name(op.type) + ")";
}

struct DCtxDeleter {
    void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

// Turns one op into its dst_length output bytes: reads and verifies the blob, then decodes.
class OpDecoder {
public:
    OpDecoder(const BlobSource& bundle, hal::BlockDevice* source, const ApplyDiffFn& apply_diff)
        : bundle_(bundle), source_(source), apply_diff_(apply_diff), dctx_(ZSTD_createDCtx()) {
        if (!dctx_) throw Error(ErrorKind::Io, "out of memory for a zstd context");
        ZSTD_DCtx_setParameter(dctx_.get(), ZSTD_d_windowLogMax, kMaxWindowLog);
    }

    void decode(size_t i, std::vector<uint8_t>& out) {
        const Operation& op = bundle_.header().operations[i];
        out.resize(op.dst_length);
        switch (op.type) {
        case OpType::Zero: std::fill(out.begin(), out.end(), 0); return;
        case OpType::Copy: read_extents(op.src_extents, out.data()); return;
        case OpType::Zstd:
            bundle_.read_blob(i, blob_);
            decompress(i, op, out, nullptr, 0);
            return;
        case OpType::ZstdPatch: {
            bundle_.read_blob(i, blob_);
            uint64_t total = 0;
            for (const Extent& e : op.src_extents)
                total += e.length;
            prefix_.resize(total);
            read_extents(op.src_extents, prefix_.data());
            decompress(i, op, out, prefix_.data(), prefix_.size());
            return;
        }
        case OpType::Diff:
            if (!apply_diff_)
                throw Error(ErrorKind::Unsupported,
                            op_label(i, op) + ": this agent has no Diff decoder registered");
            bundle_.read_blob(i, blob_);
            apply_diff_(blob_.data(), blob_.size(), *source_, op.src_extents, out.data(),
                        out.size());
            return;
        }
    }

private:
    void read_extents(const std::vector<Extent>& extents, uint8_t* dst) {
        for (const Extent& e : extents) {
            source_->read(e.offset, dst, e.length);
            dst += e.length;
        }
    }

    void decompress(size_t i, const Operation& op, std::vector<uint8_t>& out, const void* prefix,
                    size_t prefix_size) {
        // The blob must be exactly one frame that declares exactly dst_length bytes; checked
        // before any decoding work. Decoding is one-shot into the op's output buffer, so the
        // frame's window size costs no memory (windowLogMax still bounds any streaming use).
        unsigned long long content = ZSTD_getFrameContentSize(blob_.data(), blob_.size());
        if (content == ZSTD_CONTENTSIZE_ERROR)
            throw Error(ErrorKind::Malformed, op_label(i, op) + ": blob is not a zstd frame");
        if (content != op.dst_length)
            throw Error(ErrorKind::Malformed,
                        op_label(i, op) + ": zstd frame does not declare exactly dst_length bytes");
        size_t frame = ZSTD_findFrameCompressedSize(blob_.data(), blob_.size());
        if (ZSTD_isError(frame) || frame != blob_.size())
            throw Error(ErrorKind::Malformed, op_label(i, op) + ": blob is not exactly one frame");
        ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
        if (prefix) {
            size_t r = ZSTD_DCtx_refPrefix(dctx_.get(), prefix, prefix_size);
            if (ZSTD_isError(r))
                throw Error(ErrorKind::Malformed, op_label(i, op) + ": " + ZSTD_getErrorName(r));
        }
        size_t n =
            ZSTD_decompressDCtx(dctx_.get(), out.data(), out.size(), blob_.data(), blob_.size());
        if (ZSTD_isError(n))
            throw Error(ErrorKind::Malformed,
                        op_label(i, op) + ": zstd decoding failed: " + ZSTD_getErrorName(n));
        if (n != op.dst_length)
            throw Error(ErrorKind::Malformed, op_label(i, op) + ": decoded " + std::to_string(n) +
                                                  " bytes instead of " +
                                                  std::to_string(op.dst_length));
    }

    const BlobSource& bundle_;
    hal::BlockDevice* source_;
    const ApplyDiffFn& apply_diff_;
    std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx_;
    std::vector<uint8_t> blob_;
    std::vector<uint8_t> prefix_;
};

// State shared by the decoder, writer and read-back threads. Any thread that fails records its
// exception and sets `failed`, which makes every wait return.
struct Pipeline {
    std::mutex mutex;
    std::condition_variable cv;
    std::exception_ptr error;
    bool failed = false;

    struct Slot {
        size_t op = 0;
        std::vector<uint8_t> data;
    };
    std::vector<std::unique_ptr<Slot>> free_slots;
    std::deque<std::unique_ptr<Slot>> ready;

    uint64_t synced_end = 0; // target bytes [0, synced_end) are final and may be read back
    std::atomic<bool> readback_mismatch{false}; // the storage does not hold what was written

    std::mutex device_mutex; // serializes target.read/write/sync

    void fail(std::exception_ptr e) {
        std::lock_guard<std::mutex> lock(mutex);
        if (!error) error = e;
        failed = true;
        cv.notify_all();
    }
};

// Runs `body`, turning an exception into a pipeline failure.
template <class F> void guarded(Pipeline& p, F&& body) {
    try {
        body();
    } catch (...) {
        p.fail(std::current_exception());
    }
}

} // namespace

static ApplyDiffFn& registered_apply_diff() {
    static ApplyDiffFn fn;
    return fn;
}

void register_apply_diff(ApplyDiffFn fn) {
    registered_apply_diff() = std::move(fn);
}

namespace {

// SHA-256 (hex) of bytes [begin, end) of a device, read through `buf`; each read holds
// *read_mutex when one is given (threads sharing a device that need not be thread-safe).
std::string range_sha256(hal::BlockDevice& device, uint64_t begin, uint64_t end,
                         std::vector<uint8_t>& buf, std::mutex* read_mutex = nullptr) {
    Hasher h;
    for (uint64_t pos = begin; pos < end;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), end - pos));
        {
            std::unique_lock<std::mutex> lock;
            if (read_mutex) lock = std::unique_lock<std::mutex>(*read_mutex);
            device.read(pos, buf.data(), n);
        }
        h.update(buf.data(), n);
        pos += n;
    }
    return h.finish_hex();
}

} // namespace

std::string device_sha256(hal::BlockDevice& device, uint64_t length) {
    std::vector<uint8_t> buf(static_cast<size_t>(std::min<uint64_t>(length, kReadBackChunk)));
    return range_sha256(device, 0, length, buf);
}

namespace {

// An image's per-chunk hashes: the source's or the target's.
struct ChunkList {
    uint64_t image_size;
    uint64_t chunk_size;
    const std::vector<std::string>& sha256;

    uint64_t begin(size_t i) const { return i * chunk_size; }
    uint64_t end(size_t i) const { return std::min(image_size, begin(i) + chunk_size); }
    std::string bytes(size_t i) const {
        return "bytes " + std::to_string(begin(i)) + ".." + std::to_string(end(i)) + " (chunk " +
               std::to_string(i) + " of " + std::to_string(sha256.size()) + ")";
    }
};

ChunkList source_chunks(const SourceImage& image) {
    return {image.size, image.chunk_size, image.chunk_sha256};
}
ChunkList target_chunks(const Header& header) {
    return {header.target_size, header.target_chunk_size, header.target_chunk_sha256};
}

// Formats 2 and 3 list the target's chunk hashes; format 1 has only the whole-image hash.
bool has_target_chunks(const Header& header) {
    return header.target_chunk_size != 0;
}

// Indices of the source chunks that any op reads (all ops, also on resume: simpler than tying the
// check to the journal, and a resume is rare).
std::vector<size_t> chunks_read(const SourceImage& image, const std::vector<Operation>& ops) {
    std::vector<bool> needed(image.chunk_sha256.size(), false);
    for (const Operation& op : ops)
        for (const Extent& e : op.src_extents) // validated: inside image.size, length >= 1
            for (uint64_t c = e.offset / image.chunk_size;
                 c <= (e.offset + e.length - 1) / image.chunk_size; ++c)
                needed[c] = true;
    std::vector<size_t> list;
    for (size_t c = 0; c < needed.size(); ++c)
        if (needed[c]) list.push_back(c);
    return list;
}

// Threads that hash chunks: every core, up to 4 (more would only queue on the device).
size_t hashing_threads(size_t chunks) {
    return std::min(std::clamp<size_t>(std::thread::hardware_concurrency(), 1, 4),
                    std::max<size_t>(chunks, 1));
}

// Runs work() on `threads` threads (this one included). If no thread can be started the ones that
// did (and this one) do all the work: work() must take its tasks from a shared queue.
template <class F> void run_on_threads(size_t threads, F&& work) {
    std::vector<std::thread> helpers;
    for (size_t t = 1; t < threads; ++t) {
        try {
            helpers.emplace_back(work);
        } catch (const std::system_error&) {
            break;
        }
    }
    work();
    for (auto& t : helpers)
        t.join();
}

// Hashes the listed chunks on every core (reads are serialized: a BlockDevice need not be
// thread-safe) and hands each hash to check(chunk, hash), which returns false to stop early.
template <class Check>
void hash_chunks(const ChunkList& list, hal::BlockDevice& device, const std::vector<size_t>& chunks,
                 Check&& check) {
    std::mutex read_mutex, error_mutex;
    std::atomic<size_t> next{0};
    std::atomic<bool> stop{false};
    std::exception_ptr error;
    run_on_threads(hashing_threads(chunks.size()), [&] {
        try {
            std::vector<uint8_t> buf(kReadBackChunk);
            for (size_t k; !stop && (k = next++) < chunks.size();) {
                const size_t c = chunks[k];
                if (!check(c, range_sha256(device, list.begin(c), list.end(c), buf, &read_mutex)))
                    stop = true;
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
            stop = true; // the error is rethrown below
        }
    });
    if (error) std::rethrow_exception(error);
}

// Returns a listed chunk whose hash differs from the list's, or -1.
long find_bad_chunk(const ChunkList& list, hal::BlockDevice& device,
                    const std::vector<size_t>& chunks) {
    std::atomic<long> bad{-1};
    hash_chunks(list, device, chunks, [&](size_t c, const std::string& got) {
        if (equal_constant_time(got, list.sha256[c])) return true;
        bad = static_cast<long>(c);
        return false;
    });
    return bad;
}

// Format 3: the hashes of the chunks the ops read, computed here, and those of the others, from
// the header, must combine to the header's chunk_root.
bool source_root_matches(const SourceImage& image, hal::BlockDevice& source,
                         const std::vector<size_t>& chunks) {
    std::vector<std::string> all = image.chunk_sha256;
    std::mutex mutex;
    hash_chunks(source_chunks(image), source, chunks, [&](size_t c, const std::string& got) {
        std::lock_guard<std::mutex> lock(mutex);
        all[c] = got;
        return true;
    });
    return equal_constant_time(chunk_hash_root(all), image.chunk_root);
}

std::vector<size_t> all_chunks(const ChunkList& list) {
    std::vector<size_t> v(list.sha256.size());
    for (size_t i = 0; i < v.size(); ++i)
        v[i] = i;
    return v;
}

// Whether the first target_size bytes of `target`, read from the storage, are the bundle's image.
bool target_verifies(const Header& header, hal::BlockDevice& target) {
    target.drop_cache();
    if (!has_target_chunks(header))
        return equal_constant_time(device_sha256(target, header.target_size), header.target_sha256);
    const ChunkList list = target_chunks(header);
    return find_bad_chunk(list, target, all_chunks(list)) < 0;
}

} // namespace

void verify_source(const SourceImage& image, hal::BlockDevice& source,
                   const std::vector<Operation>& ops) {
    const std::string mismatch =
        "source " + source.path() + " is not the image this delta was made against (SHA-256 ";
    if (image.chunk_size == 0) {
        if (!equal_constant_time(device_sha256(source, image.size), image.sha256))
            throw Error(ErrorKind::SourceMismatch, mismatch + "differs)");
        return;
    }
    if (!image.chunk_root.empty()) {
        if (!source_root_matches(image, source, chunks_read(image, ops)))
            throw Error(ErrorKind::SourceMismatch,
                        mismatch +
                            "of the chunks the delta reads does not match source.chunk_root)");
        return;
    }
    const ChunkList list = source_chunks(image);
    const long bad = find_bad_chunk(list, source, chunks_read(image, ops));
    if (bad >= 0) {
        const uint64_t begin = list.begin(static_cast<size_t>(bad));
        throw Error(ErrorKind::SourceMismatch,
                    mismatch + "of bytes " + std::to_string(begin) + ".." +
                        std::to_string(list.end(static_cast<size_t>(bad))) + " differs)");
    }
}

InstallResult install_bundle(const BlobSource& bundle, hal::BlockDevice* source,
                             hal::BlockDevice& target, InstallJournal& journal,
                             const InstallOptions& options) {
    const Header& header = bundle.header();
    const auto& ops = header.operations;
    InstallResult result;
    result.operations = ops.size();

    // 1. Checks that need no writing.
    if (target.size() < header.target_size)
        throw Error(ErrorKind::TooLarge, "bundle image is " + std::to_string(header.target_size) +
                                             " bytes but target " + target.path() + " has " +
                                             std::to_string(target.size()));
    if (source && source->path() == target.path())
        throw Error(ErrorKind::Config, "source and target are the same device " + target.path());
    if (header.source) {
        if (!source) throw Error(ErrorKind::SourceMismatch, "delta bundle needs a source slot");
        if (source->size() < header.source->size)
            throw Error(ErrorKind::SourceMismatch,
                        "source " + source->path() + " is " + std::to_string(source->size()) +
                            " bytes, the delta needs " + std::to_string(header.source->size));
        verify_source(*header.source, *source, ops);
    }

    // 2. Where to start: a journal for this bundle and this target lets us skip finished ops.
    JournalState state{bundle.header_sha256(), target.path(), 0, false};
    if (auto old = journal.load()) {
        if (old->header_sha256 == state.header_sha256 && old->target == state.target &&
            old->next_op <= ops.size()) {
            if (old->complete && target_verifies(header, target)) {
                result.skipped = ops.size();
                result.already_complete = true;
                return result;
            }
            if (!old->complete) state.next_op = old->next_op;
        } else {
            LOG_INFO("discarding install journal of another bundle or target");
        }
    }
    const size_t first = static_cast<size_t>(state.next_op);
    result.skipped = first;
    journal.save(state);
    if (first > 0) LOG_INFO("resuming installation at operation " << first << "/" << ops.size());

    // 3. Buffers sized by the header's maxima.
    uint64_t max_data_op = 0;
    for (size_t i = first; i < ops.size(); ++i)
        if (ops[i].type != OpType::Zero) max_data_op = std::max(max_data_op, ops[i].dst_length);
    Pipeline p;
    for (size_t s = 0; s < kSlots; ++s) {
        auto slot = std::make_unique<Pipeline::Slot>();
        slot->data.reserve(max_data_op);
        p.free_slots.push_back(std::move(slot));
    }
    p.synced_end = first < ops.size() ? ops[first].dst_offset : header.target_size;
    // Written by an earlier run: read back from the storage like the rest.
    target.drop_cache();

    // 4. Decoder thread: produces ops in order into free slots (Zero ops carry no data).
    bundle.begin(first);
    std::thread decoder([&] {
        guarded(p, [&] {
            OpDecoder dec(bundle, source,
                          options.apply_diff ? options.apply_diff : registered_apply_diff());
            for (size_t i = first; i < ops.size(); ++i) {
                std::unique_ptr<Pipeline::Slot> slot;
                {
                    std::unique_lock<std::mutex> lock(p.mutex);
                    p.cv.wait(lock, [&] { return p.failed || !p.free_slots.empty(); });
                    if (p.failed) return;
                    slot = std::move(p.free_slots.back());
                    p.free_slots.pop_back();
                }
                slot->op = i;
                if (ops[i].type == OpType::Zero)
                    slot->data.clear();
                else
                    dec.decode(i, slot->data);
                std::lock_guard<std::mutex> lock(p.mutex);
                p.ready.push_back(std::move(slot));
                p.cv.notify_all();
            }
        });
    });

    // 5. Read-back: the target as far as it has been synced, from the storage (the writer drops
    // the cached pages after each sync). Format 2: each chunk against its own hash, on every core,
    // as soon as it is synced; format 1: the whole image hashed in order on one thread.
    std::string image_sha256;
    std::vector<std::thread> readers;
    auto wait_synced = [&](uint64_t end) {
        std::unique_lock<std::mutex> lock(p.mutex);
        p.cv.wait(lock, [&] { return p.failed || p.synced_end >= end; });
        return !p.failed;
    };
    const ChunkList chunks = target_chunks(header);
    std::atomic<size_t> next_chunk{0};
    auto verify_chunks = [&] {
        guarded(p, [&] {
            std::vector<uint8_t> buf(kReadBackChunk);
            for (size_t c; (c = next_chunk++) < chunks.sha256.size();) {
                if (!wait_synced(chunks.end(c))) return;
                const std::string got =
                    range_sha256(target, chunks.begin(c), chunks.end(c), buf, &p.device_mutex);
                if (!equal_constant_time(got, chunks.sha256[c])) {
                    p.readback_mismatch = true;
                    throw Error(ErrorKind::HashMismatch,
                                "target " + target.path() + ": " + chunks.bytes(c) +
                                    " read back from the device do not match the bundle's "
                                    "target_chunk_sha256");
                }
            }
        });
    };
    auto hash_whole = [&] {
        guarded(p, [&] {
            std::vector<uint8_t> buf(
                static_cast<size_t>(std::min<uint64_t>(header.target_size, kReadBackChunk)));
            Hasher h;
            for (uint64_t pos = 0; pos < header.target_size;) {
                const uint64_t end = std::min(header.target_size, pos + buf.size());
                if (!wait_synced(end)) return;
                {
                    std::lock_guard<std::mutex> lock(p.device_mutex);
                    target.read(pos, buf.data(), static_cast<size_t>(end - pos));
                }
                h.update(buf.data(), static_cast<size_t>(end - pos));
                pos = end;
            }
            image_sha256 = h.finish_hex();
        });
    };
    if (has_target_chunks(header)) {
        readers.emplace_back(verify_chunks);
        for (size_t t = 1; t < hashing_threads(chunks.sha256.size()); ++t) {
            try {
                readers.emplace_back(verify_chunks);
            } catch (const std::system_error&) {
                break; // the verifiers started take every chunk from the shared counter
            }
        }
    } else {
        readers.emplace_back(hash_whole);
    }

    // 6. Writer (this thread): writes in order, checkpoints, publishes what may be read back.
    guarded(p, [&] {
        std::vector<uint8_t> zeros;
        uint64_t since_checkpoint = 0;
        for (size_t i = first; i < ops.size(); ++i) {
            if (options.stop_requested && options.stop_requested()) {
                {
                    std::lock_guard<std::mutex> lock(p.device_mutex);
                    target.sync();
                }
                state.next_op = i;
                journal.save(state);
                throw Error(ErrorKind::State, "installation into " + target.path() +
                                                  " stopped on request after " + std::to_string(i) +
                                                  " of " + std::to_string(ops.size()) +
                                                  " operations; the next start resumes there");
            }
            std::unique_ptr<Pipeline::Slot> slot;
            {
                std::unique_lock<std::mutex> lock(p.mutex);
                p.cv.wait(lock, [&] { return p.failed || !p.ready.empty(); });
                // Ops decoded before a failure are still written, so the journal keeps them.
                if (p.ready.empty()) return;
                slot = std::move(p.ready.front());
                p.ready.pop_front();
            }
            const Operation& op = ops[i];
            if (op.type == OpType::Zero) {
                if (zeros.empty()) zeros.resize(std::min<uint64_t>(op.dst_length, kZeroChunk));
                for (uint64_t done = 0; done < op.dst_length;) {
                    size_t n =
                        static_cast<size_t>(std::min<uint64_t>(zeros.size(), op.dst_length - done));
                    std::lock_guard<std::mutex> lock(p.device_mutex);
                    target.write(op.dst_offset + done, zeros.data(), n);
                    done += n;
                }
            } else {
                std::lock_guard<std::mutex> lock(p.device_mutex);
                target.write(op.dst_offset, slot->data.data(), slot->data.size());
            }
            {
                std::lock_guard<std::mutex> lock(p.mutex);
                p.free_slots.push_back(std::move(slot));
                p.cv.notify_all();
            }
            if (options.after_op_written) options.after_op_written(i);
            since_checkpoint += op.dst_length;
            if (since_checkpoint >= options.checkpoint_bytes || i + 1 == ops.size()) {
                const uint64_t synced = op.dst_offset + op.dst_length;
                {
                    std::lock_guard<std::mutex> lock(p.device_mutex);
                    target.sync();
                    target.drop_cache();
                }
                state.next_op = i + 1;
                journal.save(state);
                since_checkpoint = 0;
                std::lock_guard<std::mutex> lock(p.mutex);
                p.synced_end = synced;
                p.cv.notify_all();
            }
            if (options.progress)
                options.progress(op.dst_offset + op.dst_length, header.target_size);
        }
    });
    decoder.join();
    for (auto& t : readers)
        t.join();
    if (p.readback_mismatch) {
        state.next_op = 0; // start over next time rather than re-verifying the same bytes
        journal.save(state);
    }
    if (p.error) std::rethrow_exception(p.error);

    // 7. The whole image, as read back from the device, must be the signed one. Format 2: every
    // chunk matched above, so it is the image the chunk list (and target_sha256 beside it in the
    // authenticated header) names.
    if (!has_target_chunks(header) && !equal_constant_time(image_sha256, header.target_sha256)) {
        state.next_op = 0; // start over next time rather than re-verifying the same bytes
        journal.save(state);
        throw Error(ErrorKind::HashMismatch, "target " + target.path() +
                                                 " does not match the bundle's target_sha256 "
                                                 "after writing (read back " +
                                                 image_sha256 + ")");
    }
    state.next_op = ops.size();
    state.complete = true;
    journal.save(state);
    return result;
}

} // namespace ota::bundle
