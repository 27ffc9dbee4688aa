// Reading a bundle file: the header is checked against the hash and length from signed metadata
// before its JSON is parsed, and every blob against its own SHA-256 before it is handed out.
#pragma once
#include "agent/bundle/format.h"
#include "agent/common/fs.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ota::bundle {

// Where the installer takes an authenticated header and the verified blobs from: a bundle file
// (BundleFile) or a bundle streamed from the network (stream_reader.h).
class BlobSource {
public:
    virtual ~BlobSource() = default;
    virtual const Header& header() const = 0;
    virtual const std::string& header_sha256() const = 0;
    // Called once by the installer before any read_blob, with the first op it will install (a
    // stream starts reading there).
    virtual void begin(size_t first_op) const { (void)first_op; }
    // The blob of operation `index`, SHA-256 checked (Error(HashMismatch) otherwise). Called by
    // one thread, with increasing indices.
    virtual void read_blob(size_t index, std::vector<uint8_t>& buf) const = 0;

protected:
    BlobSource() = default;
    BlobSource(const BlobSource&) = default;
    BlobSource& operator=(const BlobSource&) = default;
};

class BundleFile : public BlobSource {
public:
    // Opens a bundle whose header SHA-256 (hex) and length come from the signed TUF target.
    // Throws TooLarge (header length above the bound or not the expected one), HashMismatch
    // (header bytes), Malformed (magic, header JSON, file shorter or longer than the header says)
    // or Io. Nothing is parsed before the header hash matched.
    static BundleFile open(const std::string& path, const std::string& expected_header_sha256,
                           uint64_t expected_header_length);
    // For offline use (ota-agent apply, benchmarks) where no signed metadata exists: the header is
    // trusted as found, every other check still applies.
    static BundleFile open_self_verified(const std::string& path);

    BundleFile(BundleFile&&) noexcept = default;
    BundleFile& operator=(BundleFile&&) noexcept = default;

    const Header& header() const override { return header_; }
    const std::string& path() const { return path_; }
    const std::string& header_sha256() const override { return header_sha256_; }
    uint64_t header_length() const { return header_length_; }
    // File offset of the blob area (kPreambleSize + header length).
    uint64_t blob_area_offset() const { return kPreambleSize + header_length_; }
    uint64_t file_size() const { return file_size_; }

    // Reads the blob of operation `index` into `buf` (resized to data_length) and checks its
    // SHA-256: Error(HashMismatch) if it differs. Safe to call from any thread.
    void read_blob(size_t index, std::vector<uint8_t>& buf) const override;

private:
    BundleFile() = default;
    static BundleFile open_impl(const std::string& path, const std::string* expected_sha256,
                                uint64_t expected_length);

    std::string path_;
    UniqueFd fd_;
    Header header_;
    std::string header_sha256_;
    uint64_t header_length_ = 0;
    uint64_t file_size_ = 0;
};

// Reads only the preamble and returns the header length it announces (bounded by kMaxHeaderSize).
uint64_t read_header_length(int fd, const std::string& what);

} // namespace ota::bundle
