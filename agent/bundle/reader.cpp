#include "agent/bundle/reader.h"

#include "agent/bundle/header.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"

#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

namespace ota::bundle {

uint64_t read_header_length(int fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + what);
    if (static_cast<uint64_t>(st.st_size) < kPreambleSize)
        throw Error(ErrorKind::Malformed, what + " is too short to be a bundle");
    uint8_t pre[kPreambleSize];
    pread_all(fd, pre, sizeof pre, 0, what);
    if (std::memcmp(pre, kMagic, sizeof kMagic) != 0)
        throw Error(ErrorKind::Malformed, what + " is not a bundle (bad magic)");
    uint64_t length = 0;
    for (int i = 7; i >= 0; --i)
        length = (length << 8) | pre[8 + i];
    if (length > kMaxHeaderSize)
        throw Error(ErrorKind::TooLarge, what + ": header length " + std::to_string(length) +
                                             " exceeds the limit " +
                                             std::to_string(kMaxHeaderSize));
    return length;
}

BundleFile BundleFile::open(const std::string& path, const std::string& expected_header_sha256,
                            uint64_t expected_header_length) {
    return open_impl(path, &expected_header_sha256, expected_header_length);
}

BundleFile BundleFile::open_self_verified(const std::string& path) {
    return open_impl(path, nullptr, 0);
}

BundleFile BundleFile::open_impl(const std::string& path, const std::string* expected_sha256,
                                 uint64_t expected_length) {
    if (expected_sha256 && expected_length > kMaxHeaderSize)
        throw Error(ErrorKind::TooLarge, "signed header length " + std::to_string(expected_length) +
                                             " exceeds the limit");
    BundleFile b;
    b.path_ = path;
    b.fd_ = open_or_throw(path, O_RDONLY);
    b.header_length_ = read_header_length(b.fd_.get(), path);
    if (expected_sha256 && b.header_length_ != expected_length)
        throw Error(ErrorKind::HashMismatch,
                    path + ": header length " + std::to_string(b.header_length_) +
                        " differs from the signed length " + std::to_string(expected_length));
    struct stat st {};
    if (::fstat(b.fd_.get(), &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + path);
    b.file_size_ = static_cast<uint64_t>(st.st_size);
    if (b.file_size_ - kPreambleSize < b.header_length_)
        throw Error(ErrorKind::Malformed, path + " is truncated inside its header");

    std::string bytes(b.header_length_, '\0');
    pread_all(b.fd_.get(), bytes.data(), bytes.size(), kPreambleSize, path);
    b.header_sha256_ = sha256_hex(bytes);
    if (expected_sha256 && !equal_constant_time(b.header_sha256_, *expected_sha256))
        throw Error(ErrorKind::HashMismatch, path + ": header SHA-256 " + b.header_sha256_ +
                                                 " differs from the signed " + *expected_sha256);
    b.header_ = parse_header(bytes);

    uint64_t expected_size = b.blob_area_offset() + blob_area_size(b.header_);
    if (b.file_size_ < expected_size)
        throw Error(ErrorKind::Malformed, path + " is truncated: " + std::to_string(b.file_size_) +
                                              " bytes, header says " +
                                              std::to_string(expected_size));
    if (b.file_size_ > expected_size)
        throw Error(ErrorKind::Malformed, path + " has " +
                                              std::to_string(b.file_size_ - expected_size) +
                                              " bytes after the last blob");
    return b;
}

void BundleFile::read_blob(size_t index, std::vector<uint8_t>& buf) const {
    if (index >= header_.operations.size())
        throw Error(ErrorKind::State, "no operation " + std::to_string(index));
    const Operation& op = header_.operations[index];
    buf.resize(op.data_length);
    pread_all(fd_.get(), buf.data(), buf.size(), blob_area_offset() + op.data_offset, path_);
    Hasher h;
    h.update(buf.data(), buf.size());
    if (!equal_constant_time(h.finish_hex(), op.data_sha256))
        throw Error(ErrorKind::HashMismatch,
                    path_ + ": blob of operation " + std::to_string(index) + " (" +
                        op_type_name(op.type) + ") does not match its SHA-256");
}

} // namespace ota::bundle
