#include "agent/bundle/stream_reader.h"

#include "agent/bundle/header.h"
#include "agent/common/error.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace ota::bundle {

namespace {

// Complete blobs waiting for the decoder, beside the one being received and the one it decodes:
// enough to ride out a slow moment of the network or of the storage, and no more (memory).
constexpr size_t kQueuedBlobs = 2;

// The first op from `from` on that carries a blob, or ops.size().
size_t next_blob_op(const std::vector<Operation>& ops, size_t from) {
    while (from < ops.size() && !op_has_blob(ops[from].type))
        ++from;
    return from;
}

} // namespace

BundleStream::BundleStream(net::Fetcher& fetcher, SignedBundleFile file)
    : fetcher_(fetcher), file_(std::move(file)) {}

BundleStream::~BundleStream() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        cancelled_ = true;
    }
    cv_.notify_all();
    if (reader_.joinable()) reader_.join();
}

std::unique_ptr<BundleStream> BundleStream::open(net::Fetcher& fetcher, SignedBundleFile file) {
    const std::string what = file.url;
    if (file.header_length > kMaxHeaderSize)
        throw Error(ErrorKind::TooLarge, "signed header length " +
                                             std::to_string(file.header_length) +
                                             " exceeds the limit");
    const uint64_t head_length = kPreambleSize + file.header_length;
    if (file.length < head_length)
        throw Error(ErrorKind::Malformed, what + ": signed length " + std::to_string(file.length) +
                                              " is shorter than its header");
    std::unique_ptr<BundleStream> s(new BundleStream(fetcher, std::move(file)));
    std::string& head = s->head_bytes_;
    head.reserve(static_cast<size_t>(head_length));
    net::RangeSink sink{[&](const uint8_t* data, size_t size) {
                            head.append(reinterpret_cast<const char*>(data), size);
                        },
                        {}};
    fetcher.fetch_range(s->file_.url, 0, head_length, sink);
    s->received_ = head.size();

    if (std::memcmp(head.data(), kMagic, sizeof kMagic) != 0)
        throw Error(ErrorKind::Malformed, what + " is not a bundle (bad magic)");
    uint64_t announced = 0;
    for (int i = 7; i >= 0; --i)
        announced = (announced << 8) | static_cast<uint8_t>(head[8 + static_cast<size_t>(i)]);
    if (announced != s->file_.header_length)
        throw Error(ErrorKind::HashMismatch, what + ": header length " + std::to_string(announced) +
                                                 " differs from the signed length " +
                                                 std::to_string(s->file_.header_length));
    const std::string header_bytes = head.substr(kPreambleSize);
    if (!equal_constant_time(sha256_hex(header_bytes), s->file_.header_sha256))
        throw Error(ErrorKind::HashMismatch,
                    what + ": header SHA-256 differs from the signed " + s->file_.header_sha256);
    s->header_ = parse_header(header_bytes);
    const uint64_t expected = head_length + blob_area_size(s->header_);
    if (expected != s->file_.length)
        throw Error(ErrorKind::Malformed, what + ": the header describes a " +
                                              std::to_string(expected) +
                                              "-byte bundle, the signed target " +
                                              std::to_string(s->file_.length) + " bytes");
    return s;
}

void BundleStream::begin(size_t first_op) const {
    const auto& ops = header_.operations;
    const size_t first_blob = next_blob_op(ops, first_op);
    std::lock_guard<std::mutex> lock(mutex_);
    if (started_) throw Error(ErrorKind::State, "bundle stream " + file_.url + " started twice");
    started_ = true;
    // The whole file is seen when the stream starts at the first blob (or there is none).
    whole_file_ = first_blob == ops.size() ? next_blob_op(ops, 0) == ops.size()
                                           : ops[first_blob].data_offset == 0;
    if (first_blob == ops.size()) {
        finished_ = true;
        if (whole_file_) {
            Hasher whole(file_.file_hash_algorithm);
            whole.update(head_bytes_);
            if (!equal_constant_time(whole.finish_hex(), file_.file_hash))
                throw Error(ErrorKind::HashMismatch,
                            file_.url + " does not match the hash of its signed target");
        }
        return;
    }
    auto* self = const_cast<BundleStream*>(this);
    reader_ = std::thread([self, first_blob] { self->read_stream(first_blob); });
}

void BundleStream::fail(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = error;
    cv_.notify_all();
}

void BundleStream::read_stream(size_t first_blob) {
    try {
        const auto& ops = header_.operations;
        const uint64_t blob_area = kPreambleSize + file_.header_length;
        std::optional<Hasher> whole;
        if (whole_file_) {
            whole.emplace(file_.file_hash_algorithm);
            whole->update(head_bytes_);
        }
        size_t op = first_blob;
        Blob current{op, {}};
        current.data.reserve(static_cast<size_t>(ops[op].data_length));
        net::RangeSink sink;
        sink.cancelled = [this] {
            std::lock_guard<std::mutex> lock(mutex_);
            return cancelled_;
        };
        sink.data = [&](const uint8_t* data, size_t size) {
            received_ += size;
            if (whole) whole->update(data, size);
            while (size > 0) {
                if (op >= ops.size())
                    throw Error(ErrorKind::Malformed, file_.url + ": bytes after the last blob");
                const uint64_t want = ops[op].data_length - current.data.size();
                const size_t take = static_cast<size_t>(std::min<uint64_t>(want, size));
                current.data.insert(current.data.end(), data, data + take);
                data += take;
                size -= take;
                if (current.data.size() < ops[op].data_length) continue;
                const size_t next = next_blob_op(ops, op + 1);
                // The file ends with the last blob: its whole-file hash is complete now, and the
                // last blob goes to the installer only if it matches.
                if (next == ops.size() && whole &&
                    !equal_constant_time(whole->finish_hex(), file_.file_hash))
                    throw Error(ErrorKind::HashMismatch,
                                file_.url + " does not match the hash of its signed target");
                std::unique_lock<std::mutex> lock(mutex_);
                cv_.wait(lock, [&] { return cancelled_ || ready_.size() < kQueuedBlobs; });
                if (cancelled_) throw Error(ErrorKind::State, file_.url + ": stream stopped");
                ready_.push_back(std::move(current));
                cv_.notify_all();
                op = next;
                current = Blob{op, {}};
                if (op < ops.size()) current.data.reserve(static_cast<size_t>(ops[op].data_length));
            }
        };
        fetcher_.fetch_range(file_.url, blob_area + ops[first_blob].data_offset, file_.length,
                             sink);
        std::lock_guard<std::mutex> lock(mutex_);
        finished_ = true;
        cv_.notify_all();
    } catch (...) {
        fail(std::current_exception());
    }
}

void BundleStream::read_blob(size_t index, std::vector<uint8_t>& buf) const {
    const auto& ops = header_.operations;
    if (index >= ops.size()) throw Error(ErrorKind::State, "no operation " + std::to_string(index));
    Blob blob;
    {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return !ready_.empty() || error_ || finished_; });
        if (ready_.empty()) {
            if (error_) std::rethrow_exception(error_);
            throw Error(ErrorKind::State,
                        file_.url + ": the stream ended before operation " + std::to_string(index));
        }
        blob = std::move(ready_.front());
        ready_.pop_front();
        cv_.notify_all();
    }
    if (blob.op != index)
        throw Error(ErrorKind::State, file_.url + ": blob of operation " + std::to_string(blob.op) +
                                          " arrived where operation " + std::to_string(index) +
                                          " was expected");
    buf.swap(blob.data);
    Hasher h;
    h.update(buf.data(), buf.size());
    if (!equal_constant_time(h.finish_hex(), ops[index].data_sha256))
        throw Error(ErrorKind::HashMismatch,
                    file_.url + ": blob of operation " + std::to_string(index) + " (" +
                        op_type_name(ops[index].type) + ") does not match its SHA-256");
}

} // namespace ota::bundle
