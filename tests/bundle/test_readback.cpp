// Format 2 headers (per-chunk target hashes) and the read-back check: the written slot is read from
// the storage, not from the page cache, and a chunk that the storage does not hold as written is
// named in the error.
#include "agent/bundle/apply_file.h"
#include "agent/bundle/header.h"
#include "agent/bundle/installer.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "bundle_test_util.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <fcntl.h>
#include <mutex>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <unistd.h>

using namespace ota;
using namespace ota::bundle;
using ota::test::error_kind_of;
using ota::test::pseudo_random_bytes;
using ota::test::read_all;
using ota::test::TempDir;
using ota::test::write_all_file;

namespace {

// Random and zero regions, compressible text.
std::string test_image(size_t size, uint64_t seed) {
    std::string img = pseudo_random_bytes(size, seed);
    for (size_t i = size / 4; i < size / 2; ++i)
        img[i] = 0;
    for (size_t i = size / 2; i < size * 5 / 8; ++i)
        img[i] = static_cast<char>('a' + i % 7);
    return img;
}

FullBundleOptions options(uint64_t target_chunk, bool chunk_hashes = true) {
    FullBundleOptions o;
    o.chunk_size = 64 << 10;
    o.zstd_level = 3;
    o.threads = 2;
    o.target_chunk_size = target_chunk;
    o.target_chunk_hashes = chunk_hashes;
    return o;
}

// A valid format 2 header of a 300 000-byte image in 64 KiB chunks (5 of them).
Header chunked_header() {
    Header h;
    h.format = kFormatChunkHashes;
    h.target_size = 300000;
    h.target_sha256 = std::string(64, 'a');
    h.target_chunk_size = 65536;
    for (int i = 0; i < 5; ++i)
        h.target_chunk_sha256.push_back(std::string(63, 'b') + static_cast<char>('0' + i));
    Operation op;
    op.type = OpType::Zero;
    op.dst_length = 300000;
    h.operations.push_back(op);
    h.max_op_output = 300000;
    return h;
}

ErrorKind parse_error_kind(const Header& h, std::string* message = nullptr) {
    return error_kind_of([&] { parse_header(header_to_json(h)); }, message);
}

// A slot as the kernel presents one: writes land in a cache, sync() copies them to the storage,
// drop_cache() forgets clean cached bytes, and reads are served from the cache when it has them.
// The storage keeps the byte at `bad_offset` flipped: a cell that does not hold what is written.
class CachedStorage : public hal::BlockDevice {
public:
    CachedStorage(uint64_t size, uint64_t bad_offset)
        : storage_(size, '\x5a'), cache_(size, 0), cached_(size, false), dirty_(size, false),
          bad_offset_(bad_offset) {}

    uint64_t size() const override { return storage_.size(); }
    const std::string& path() const override { return path_; }
    void read(uint64_t offset, void* buf, size_t len) override {
        REQUIRE(offset + len <= size());
        auto* out = static_cast<char*>(buf);
        for (size_t i = 0; i < len; ++i)
            out[i] = cached_[offset + i] ? cache_[offset + i] : storage_[offset + i];
    }
    void write(uint64_t offset, const void* buf, size_t len) override {
        REQUIRE(offset + len <= size());
        const auto* in = static_cast<const char*>(buf);
        for (size_t i = 0; i < len; ++i) {
            cache_[offset + i] = in[i];
            cached_[offset + i] = dirty_[offset + i] = true;
        }
    }
    void sync() override {
        for (uint64_t i = 0; i < size(); ++i)
            if (dirty_[i]) {
                storage_[i] = i == bad_offset_ ? static_cast<char>(cache_[i] ^ 0x10) : cache_[i];
                dirty_[i] = false;
            }
    }
    void drop_cache() override {
        for (uint64_t i = 0; i < size(); ++i)
            if (!dirty_[i]) cached_[i] = false;
    }
    std::string storage() const { return storage_; }

private:
    std::string path_ = "cached-slot";
    std::string storage_, cache_;
    std::vector<bool> cached_, dirty_;
    uint64_t bad_offset_;
};

} // namespace

TEST_CASE("format 2 headers: per-chunk target hashes round trip and are strict", "[bundle]") {
    std::string msg;
    const Header ok = chunked_header();
    const std::string json = header_to_json(ok);
    const Header back = parse_header(json);
    CHECK(back.format == kFormatChunkHashes);
    CHECK(back.target_chunk_size == 65536);
    CHECK(back.target_chunk_sha256 == ok.target_chunk_sha256);
    CHECK(header_to_json(back) == json);
    CHECK_THAT(json, Catch::Contains("\"format\":2"));
    CHECK_THAT(json, Catch::Contains("\"target_chunk_size\":65536"));

    SECTION("chunk size") {
        for (uint64_t c : {uint64_t{100000}, kMinHashChunk / 2, kMaxHashChunk * 2, uint64_t{0}}) {
            Header h = ok;
            h.target_chunk_size = c;
            CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
            CHECK_THAT(msg, Catch::Contains("target_chunk_size"));
        }
    }
    SECTION("one hash per chunk, exactly") {
        Header h = ok;
        h.target_chunk_sha256.pop_back();
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("needs 5"));
        h = ok;
        h.target_chunk_sha256.push_back(std::string(64, 'c'));
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        h = ok;
        h.target_chunk_sha256.clear();
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
    }
    SECTION("hash spelling") {
        Header h = ok;
        h.target_chunk_sha256[3][10] = 'G';
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("target_chunk_sha256[3]"));
        h = ok;
        h.target_chunk_sha256[0].pop_back();
        CHECK(parse_error_kind(h) == ErrorKind::Malformed);
        Json j = Json::parse(json);
        j["target_chunk_sha256"][1] = 7;
        CHECK(error_kind_of([&] { parse_header(canonical_json(j)); }) == ErrorKind::Malformed);
    }
    SECTION("the fields belong to format 2 only, and format 2 needs them") {
        Json j = Json::parse(json);
        j["format"] = 1;
        CHECK(error_kind_of([&] { parse_header(canonical_json(j)); }, &msg) ==
              ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("unexpected key \"target_chunk"));
        Header h = ok;
        h.format = kFormatWholeImageHash;
        CHECK(error_kind_of([&] { validate_header(h); }) == ErrorKind::Malformed);
        for (const char* key : {"target_chunk_size", "target_chunk_sha256"}) {
            Json k = Json::parse(json);
            k.erase(key);
            CHECK(error_kind_of([&] { parse_header(canonical_json(k)); }, &msg) ==
                  ErrorKind::Malformed);
            CHECK_THAT(msg, Catch::Contains(key));
        }
        Json w = Json::parse(json);
        w["target_chunk_sha256"] = "abc";
        CHECK(error_kind_of([&] { parse_header(canonical_json(w)); }) == ErrorKind::Malformed);
    }
    SECTION("a hash list longer than the bound is refused before its entries are read") {
        Json j = Json::parse(json);
        j["target_chunk_sha256"] = Json::array();
        for (uint64_t i = 0; i <= kMaxHashChunks; ++i)
            j["target_chunk_sha256"].push_back(0);
        CHECK(error_kind_of([&] { parse_header(canonical_json(j)); }) == ErrorKind::TooLarge);
    }
    SECTION("where one chunk is the whole image, both hashes must agree") {
        Header h = ok;
        h.target_size = h.max_op_output = h.operations[0].dst_length = 1000;
        h.target_chunk_sha256 = {std::string(64, 'b')};
        CHECK(parse_error_kind(h, &msg) == ErrorKind::Malformed);
        CHECK_THAT(msg, Catch::Contains("differs from target_sha256"));
        h.target_chunk_sha256 = {h.target_sha256};
        CHECK_NOTHROW(parse_header(header_to_json(h)));
        Header empty;
        empty.format = kFormatChunkHashes;
        empty.target_chunk_size = 65536;
        empty.target_sha256 = std::string(64, 'a');
        CHECK(parse_error_kind(empty) == ErrorKind::Malformed);
        empty.target_sha256 = sha256_hex("");
        CHECK_NOTHROW(parse_header(header_to_json(empty)));
    }
}

TEST_CASE("full bundles list the SHA-256 of each target chunk", "[bundle]") {
    TempDir dir;
    const std::string img = test_image((5 << 16) + 1234, 3);
    write_all_file(dir.file("image"), img);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"), options(65536));
    const Header& h = info.header;
    CHECK(h.format == kFormatCompact);
    REQUIRE(h.target_chunk_sha256.size() == 6);
    for (size_t i = 0; i < 6; ++i)
        CHECK(h.target_chunk_sha256[i] == sha256_hex(img.substr(i * 65536, 65536)));
    CHECK(h.target_sha256 == sha256_hex(img));
    // The default: 1 MiB chunks, larger so that there are at most 1024.
    CHECK(pick_chunk_size(img.size(), kFullBundleHashChunk, kFullBundleMaxHashChunks) == 1 << 20);
    CHECK(pick_chunk_size(1ull << 30, kFullBundleHashChunk, kFullBundleMaxHashChunks) == 1 << 20);
    CHECK(pick_chunk_size((1ull << 30) + 1, kFullBundleHashChunk, kFullBundleMaxHashChunks) ==
          2 << 20);
    // Fed in odd pieces, the digester gives the same lists.
    ImageDigester d(65536);
    for (size_t pos = 0; pos < img.size(); pos += 7777)
        d.update(img.data() + pos, std::min<size_t>(7777, img.size() - pos));
    ImageDigests digests = d.finish();
    CHECK(digests.sha256 == h.target_sha256);
    CHECK(digests.chunk_sha256 == h.target_chunk_sha256);
}

TEST_CASE("the read-back comes from the storage: a chunk it does not hold is named", "[bundle]") {
    TempDir dir;
    const std::string img = test_image(6 << 16, 5);
    write_all_file(dir.file("image"), img);
    const bool chunked = GENERATE(true, false);
    CAPTURE(chunked);
    build_full_bundle(dir.file("image"), dir.file("bundle"), options(65536, chunked));
    BundleFile b = BundleFile::open_self_verified(dir.file("bundle"));

    SECTION("a flipped cell in chunk 3 fails the install, and the journal starts over") {
        const uint64_t bad = 3 * 65536 + 4321;
        CachedStorage slot(img.size(), bad);
        InstallJournal journal(dir.file("j"));
        std::string msg;
        CHECK(error_kind_of([&] { install_bundle(b, nullptr, slot, journal); }, &msg) ==
              ErrorKind::HashMismatch);
        if (chunked)
            CHECK_THAT(msg, Catch::Contains("bytes 196608..262144 (chunk 3 of 6)"));
        else
            CHECK_THAT(msg, Catch::Contains("target_sha256"));
        REQUIRE(journal.load());
        CHECK_FALSE(journal.load()->complete);
        CHECK(journal.load()->next_op == 0);
    }
    SECTION("storage that holds what was written verifies") {
        CachedStorage slot(img.size(), UINT64_MAX);
        InstallJournal journal(dir.file("j"));
        install_bundle(b, nullptr, slot, journal);
        CHECK(slot.storage() == img);
        CHECK(journal.load()->complete);
    }
}

TEST_CASE("format 2 and 3 bundles verify every chunk on all cores, also when resumed", "[bundle]") {
    TempDir dir;
    const std::string img = test_image(40 << 16, 9);
    write_all_file(dir.file("image"), img);
    FullBundleOptions o = options(65536);
    o.compact_header = GENERATE(true, false);
    CHECK(build_full_bundle(dir.file("image"), dir.file("bundle"), o).header.format ==
          (o.compact_header ? kFormatCompact : kFormatChunkHashes));
    write_all_file(dir.file("target"), std::string(img.size(), '\x11'));
    InstallOptions stop;
    stop.checkpoint_bytes = 0;
    stop.after_op_written = [](size_t i) {
        if (i == 17) throw Error(ErrorKind::Io, "simulated power cut");
    };
    BundleFile b = BundleFile::open_self_verified(dir.file("bundle"));
    {
        auto target = hal::open_block_device(dir.file("target"), true);
        InstallJournal journal(dir.file("j"));
        CHECK_THROWS(install_bundle(b, nullptr, *target, journal, stop));
    }
    // Chunk 2 was written by the first run; the storage loses it before the resume.
    {
        UniqueFd fd = open_or_throw(dir.file("target"), O_WRONLY);
        pwrite_all(fd.get(), "?", 1, 2 * 65536 + 9, "target");
    }
    auto target = hal::open_block_device(dir.file("target"), true);
    InstallJournal journal(dir.file("j"));
    std::string msg;
    CHECK(error_kind_of([&] { install_bundle(b, nullptr, *target, journal); }, &msg) ==
          ErrorKind::HashMismatch);
    CHECK_THAT(msg, Catch::Contains("(chunk 2 of 40)"));
    InstallResult r = install_bundle(b, nullptr, *target, journal);
    CHECK(r.skipped == 0);
    CHECK(read_all(dir.file("target")) == img);
    CHECK(install_bundle(b, nullptr, *target, journal).already_complete);
}

TEST_CASE("old format 1 bundles keep installing", "[bundle]") {
    TempDir dir;
    const std::string img = test_image(5 << 16, 13);
    write_all_file(dir.file("image"), img);
    BundleInfo info = build_full_bundle(dir.file("image"), dir.file("bundle"),
                                        options(0, /*chunk_hashes=*/false));
    CHECK(info.header.format == kFormatWholeImageHash);
    CHECK_THAT(header_to_json(info.header), Catch::Contains("\"format\":1"));
    CHECK_FALSE(header_to_json(info.header).find("target_chunk") != std::string::npos);
    std::string err;
    CHECK(apply_bundle_file(dir.file("bundle"), nullptr, dir.file("out"), &err) == 0);
    CHECK(err == "");
    CHECK(read_all(dir.file("out")) == img);
}

TEST_CASE("drop_cache evicts a synced file slot's pages", "[bundle]") {
    TempDir dir;
    struct statfs fs {};
    REQUIRE(::statfs(dir.path().c_str(), &fs) == 0);
    if (fs.f_type == 0x01021994) { // TMPFS_MAGIC: the page cache is the storage
        WARN("the test directory is on tmpfs, where no page can be dropped");
        return;
    }
    const size_t size = 64 * 4096;
    write_all_file(dir.file("slot"), std::string(size, '\0'));
    auto slot = hal::open_block_device(dir.file("slot"), true);
    const std::string data = pseudo_random_bytes(size, 21);
    slot->write(0, data.data(), data.size());
    slot->sync();
    auto resident_pages = [&] {
        UniqueFd fd = open_or_throw(dir.file("slot"), O_RDONLY);
        void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd.get(), 0);
        REQUIRE(map != MAP_FAILED);
        std::vector<unsigned char> vec(size / 4096);
        REQUIRE(::mincore(map, size, vec.data()) == 0);
        ::munmap(map, size);
        size_t n = 0;
        for (unsigned char v : vec)
            n += v & 1;
        return n;
    };
    REQUIRE(resident_pages() > 0);
    slot->drop_cache();
    CHECK(resident_pages() == 0);
    std::string back(size, '\0');
    slot->read(0, back.data(), size);
    CHECK(back == data);
}
