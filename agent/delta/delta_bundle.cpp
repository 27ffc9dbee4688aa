#include "agent/delta/delta_bundle.h"

#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <algorithm>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

namespace ota::delta {

namespace {

// A read-only mapping of a whole file: the encoder needs random access to both images.
class MappedFile {
public:
    explicit MappedFile(const std::string& path) {
        UniqueFd fd = open_or_throw(path, O_RDONLY);
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + path);
        size_ = static_cast<uint64_t>(st.st_size);
        if (size_ == 0) return;
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
        if (p == MAP_FAILED) throw Error(ErrorKind::Io, "cannot map " + path);
        data_ = static_cast<const uint8_t*>(p);
    }
    ~MappedFile() {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    const uint8_t* data() const { return data_; }
    uint64_t size() const { return size_; }

private:
    const uint8_t* data_ = nullptr;
    uint64_t size_ = 0;
};

// The source's whole hash plus one per chunk, so the agent can check the chunks on all its cores
// and skip those the delta never reads. At most 32 chunks of at least 1 MiB: enough to spread the
// work and to skip the unused half of a file-system image (rootfs-ext4: 13 of 24 read). A compact
// header carries only the chunks no op reads (32 bytes each) plus one root hash, so a tiny change,
// whose copies read every chunk, pays 32 bytes for them (the bundle size is the headline number).
bundle::SourceImage describe_source(const uint8_t* data, uint64_t size) {
    auto bytes = [&](uint64_t offset, uint64_t length) {
        return std::string_view(reinterpret_cast<const char*>(data) + offset, length);
    };
    bundle::SourceImage source{size, sha256_hex(bytes(0, size))};
    source.chunk_size = 1ull << 20;
    while (size > 32 * source.chunk_size)
        source.chunk_size *= 2;
    for (uint64_t offset = 0; offset < size; offset += source.chunk_size)
        source.chunk_sha256.push_back(
            sha256_hex(bytes(offset, std::min(source.chunk_size, size - offset))));
    return source;
}

} // namespace

bundle::BundleInfo build_delta_bundle(const std::string& old_path, const std::string& new_path,
                                      const std::string& out_path, const DeltaOptions& options,
                                      DeltaStats* stats) {
    MappedFile old_image(old_path);
    MappedFile new_image(new_path);
    bundle::BundleWriter writer(out_path);
    writer.set_compact_header(options.compact_header);
    writer.set_source(describe_source(old_image.data(), old_image.size()));
    encode_delta(
        old_image.data(), old_image.size(), new_image.data(), new_image.size(), options,
        [&](EncodedOp&& op) {
            writer.add_operation(op.type, op.dst_length, std::move(op.src_extents), op.blob.data(),
                                 op.blob.size());
        },
        stats);
    // Per-chunk target hashes let the agent verify the written image on all its cores; at most 4
    // chunks (128 bytes of a compact header: the bundle size is the headline number).
    return writer.finish(
        bundle::digest_image(new_image.data(), new_image.size(),
                             bundle::pick_chunk_size(new_image.size(), bundle::kMinHashChunk, 4)));
}

} // namespace ota::delta
