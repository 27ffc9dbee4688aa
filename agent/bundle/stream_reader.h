// A bundle installed straight from the network: no copy of it is kept on disk. The header (and
// preamble) is fetched first and checked against the signed header hash and length before it is
// parsed, exactly as BundleFile does; the blob area then arrives as one stream (a Range request
// from the first blob still needed), read by a thread of its own that
//   - hashes every byte for the whole-file hash of the signed TUF target (SHA-256 or SHA-512),
//   - cuts the stream into blobs and hands them, a bounded number at a time, to the installer,
//     which checks each against its SHA-256 in the header before decoding it.
// So a bundle is read once, its two hashes run on two threads, and the memory is a few blobs
// whatever the bundle's size. The last blob is handed out only once the whole-file hash matched:
// an install that streamed the bundle from its first blob cannot complete unless the file is
// exactly the signed target (manifests/BUNDLE.md, "Streamed installs").
#pragma once
#include "agent/bundle/reader.h"
#include "agent/common/crypto.h"
#include "agent/net/fetcher.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ota::bundle {

// What the signed target says about the bundle file.
struct SignedBundleFile {
    std::string url;
    uint64_t length = 0; // the whole file
    HashAlgorithm file_hash_algorithm = HashAlgorithm::Sha256;
    std::string file_hash; // hex
    std::string header_sha256;
    uint64_t header_length = 0;
};

class BundleStream : public BlobSource {
public:
    // Fetches and checks the preamble and header. Throws TooLarge / HashMismatch / Malformed as
    // BundleFile::open does (also when the header's blob area does not end exactly at the signed
    // length), NotFound / Network from the fetcher. Nothing is written anywhere.
    static std::unique_ptr<BundleStream> open(net::Fetcher& fetcher, SignedBundleFile file);
    ~BundleStream() override; // stops the transfer and joins the reading thread
    BundleStream(const BundleStream&) = delete;
    BundleStream& operator=(const BundleStream&) = delete;

    const Header& header() const override { return header_; }
    const std::string& header_sha256() const override { return file_.header_sha256; }
    // Starts the reading thread at the blob of the first op from `first_op` on that has one.
    void begin(size_t first_op) const override;
    // Waits for the next blob; rethrows the reading thread's error (Network, HashMismatch of the
    // whole file, ...).
    void read_blob(size_t index, std::vector<uint8_t>& buf) const override;

    // Whether this run's stream covered the whole file, so the whole-file hash was checked (an
    // install resumed after a restart streams only the rest: the bytes before it were
    // authenticated blob by blob under the signed header hash, see BUNDLE.md).
    bool whole_file_checked() const { return whole_file_; }
    // Bytes received from the network by this object (header included).
    uint64_t bytes_received() const { return received_.load(); }

private:
    BundleStream(net::Fetcher& fetcher, SignedBundleFile file);
    void read_stream(size_t first_blob_op);
    void fail(std::exception_ptr error);

    struct Blob {
        size_t op = 0;
        std::vector<uint8_t> data;
    };

    net::Fetcher& fetcher_;
    SignedBundleFile file_;
    Header header_;
    std::string head_bytes_; // preamble + header, hashed first when the stream covers the file

    mutable std::mutex mutex_;
    mutable std::condition_variable cv_;
    mutable std::deque<Blob> ready_;
    mutable std::exception_ptr error_;
    mutable bool cancelled_ = false;
    mutable bool started_ = false;
    mutable bool finished_ = false; // the reading thread got every byte it was to read
    mutable bool whole_file_ = false;
    std::atomic<uint64_t> received_{0};
    mutable std::thread reader_;
};

} // namespace ota::bundle
