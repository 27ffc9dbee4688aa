// Bundles installed from a stream (BundleStream): read once, the whole-file hash of the signed
// target computed beside the blob hashes, and the last blob written only once it matched.
#include "agent/bundle/installer.h"
#include "agent/bundle/stream_reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/net/file_fetcher.h"
#include "bundle_test_util.h"
#include "hal/block_device.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <random>

using namespace ota;
using namespace ota::bundle;
using ota::test::error_kind_of;
using ota::test::pseudo_random_bytes;
using ota::test::read_all;
using ota::test::TempDir;
using ota::test::write_all_file;

namespace {

// Counts the bytes a FileFetcher streams, and the ranges asked for.
class CountingFetcher : public net::FileFetcher {
public:
    void fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                     const net::RangeSink& sink) override {
        ranges.emplace_back(offset, end);
        net::RangeSink counted{[&](const uint8_t* d, size_t n) {
                                   bytes += n;
                                   sink.data(d, n);
                               },
                               sink.cancelled};
        FileFetcher::fetch_range(url, offset, end, counted);
    }
    uint64_t bytes = 0;
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
};

struct Fixture {
    TempDir dir;
    std::string image;
    BundleInfo info;
    SignedBundleFile signed_file;

    explicit Fixture(HashAlgorithm file_hash = HashAlgorithm::Sha256) {
        image = pseudo_random_bytes(1 << 20, 5);
        for (size_t i = 300000; i < 500000; ++i)
            image[i] = static_cast<char>('a' + i % 5);
        write_all_file(dir.file("image"), image);
        FullBundleOptions o;
        o.chunk_size = 64 << 10;
        o.zstd_level = 3;
        o.threads = 2;
        o.target_chunk_size = 64 << 10;
        info = build_full_bundle(dir.file("image"), dir.file("bundle"), o);
        const std::string bytes = read_all(dir.file("bundle"));
        signed_file.url = "file://" + dir.file("bundle");
        signed_file.length = bytes.size();
        signed_file.file_hash_algorithm = file_hash;
        signed_file.file_hash =
            file_hash == HashAlgorithm::Sha256 ? sha256_hex(bytes) : sha512_hex(bytes);
        signed_file.header_sha256 = info.header_sha256;
        signed_file.header_length = info.header_length;
        write_all_file(dir.file("target"), std::string(image.size() + 4096, '\x55'));
    }
    std::unique_ptr<hal::BlockDevice> target() {
        return hal::open_block_device(dir.file("target"), true);
    }
    std::string written() { return read_all(dir.file("target")).substr(0, image.size()); }
};

} // namespace

TEST_CASE("a streamed bundle installs byte-exact, each bundle byte read once", "[stream]") {
    for (HashAlgorithm alg : {HashAlgorithm::Sha256, HashAlgorithm::Sha512}) {
        Fixture f(alg);
        CountingFetcher fetcher;
        auto stream = BundleStream::open(fetcher, f.signed_file);
        InstallJournal journal(f.dir.file("journal"));
        auto target = f.target();
        InstallOptions o;
        o.checkpoint_bytes = 0;
        install_bundle(*stream, nullptr, *target, journal, o);
        CHECK(f.written() == f.image);
        CHECK(stream->whole_file_checked());
        CHECK(journal.load()->complete);
        // The header once, then the blob area once: no separate pass over the file.
        CHECK(fetcher.bytes == f.signed_file.length);
        CHECK(stream->bytes_received() == f.signed_file.length);
    }
}

TEST_CASE("the whole-file hash gates the last blob: a wrong one completes nothing", "[stream]") {
    Fixture f;
    f.signed_file.file_hash = sha256_hex("another bundle");
    net::FileFetcher fetcher;
    auto stream = BundleStream::open(fetcher, f.signed_file); // the header still matches
    InstallJournal journal(f.dir.file("journal"));
    auto target = f.target();
    InstallOptions o;
    o.checkpoint_bytes = 0;
    const Header& h = stream->header();
    size_t last_blob = 0;
    for (size_t i = 0; i < h.operations.size(); ++i)
        if (op_has_blob(h.operations[i].type)) last_blob = i;
    bool last_written = false;
    o.after_op_written = [&](size_t i) { last_written = last_written || i == last_blob; };
    std::string message;
    CHECK(error_kind_of([&] { install_bundle(*stream, nullptr, *target, journal, o); }, &message) ==
          ErrorKind::HashMismatch);
    CHECK(message.find("does not match the hash of its signed target") != std::string::npos);
    CHECK_FALSE(last_written);
    REQUIRE(journal.load());
    CHECK_FALSE(journal.load()->complete);
    CHECK(journal.load()->next_op <= last_blob);
}

TEST_CASE("a corrupted blob in the stream is refused before it is written", "[stream]") {
    Fixture f;
    std::string bytes = read_all(f.dir.file("bundle"));
    bytes[bytes.size() - 100] ^= 0x40; // inside the last blob
    write_all_file(f.dir.file("bundle"), bytes);
    net::FileFetcher fetcher;
    auto stream = BundleStream::open(fetcher, f.signed_file);
    InstallJournal journal(f.dir.file("journal"));
    auto target = f.target();
    std::string message;
    CHECK(error_kind_of([&] { install_bundle(*stream, nullptr, *target, journal); }, &message) ==
          ErrorKind::HashMismatch);
    CHECK_FALSE(journal.load()->complete);
}

TEST_CASE("a streamed header is checked against its signed hash and length", "[stream]") {
    Fixture f;
    net::FileFetcher fetcher;
    SignedBundleFile other = f.signed_file;
    other.header_sha256 = sha256_hex("x");
    CHECK(error_kind_of([&] { BundleStream::open(fetcher, other); }) == ErrorKind::HashMismatch);
    other = f.signed_file;
    other.header_length += 1;
    CHECK(error_kind_of([&] { BundleStream::open(fetcher, other); }) == ErrorKind::HashMismatch);
    other = f.signed_file;
    other.length += 1; // the header's blob area must end at the signed length
    CHECK(error_kind_of([&] { BundleStream::open(fetcher, other); }) == ErrorKind::Malformed);
    other = f.signed_file;
    other.header_length = kMaxHeaderSize + 1;
    CHECK(error_kind_of([&] { BundleStream::open(fetcher, other); }) == ErrorKind::TooLarge);
}

TEST_CASE("a stream cut at random points resumes from the journal with a range", "[stream]") {
    Fixture f;
    std::mt19937_64 rng(14);
    InstallJournal journal(f.dir.file("journal"));
    uint64_t total_streamed = 0;
    bool resumed = false;
    for (int attempt = 0; attempt < 50; ++attempt) {
        // A fetcher that fails after a random number of bytes, like a cut connection.
        struct CutFetcher : net::FileFetcher {
            uint64_t left = 0;
            std::vector<uint64_t> offsets;
            void fetch_range(const std::string& url, uint64_t offset, uint64_t end,
                             const net::RangeSink& sink) override {
                offsets.push_back(offset);
                net::RangeSink cut{[&](const uint8_t* d, size_t n) {
                                       if (n > left) {
                                           sink.data(d, static_cast<size_t>(left));
                                           throw Error(ErrorKind::Network, "connection cut");
                                       }
                                       left -= n;
                                       sink.data(d, n);
                                   },
                                   sink.cancelled};
                FileFetcher::fetch_range(url, offset, end, cut);
            }
        } fetcher;
        fetcher.left = std::uniform_int_distribution<uint64_t>(0, f.signed_file.length / 2)(rng);
        try {
            auto stream = BundleStream::open(fetcher, f.signed_file);
            auto target = f.target();
            InstallOptions o;
            o.checkpoint_bytes = 64 << 10;
            auto r = install_bundle(*stream, nullptr, *target, journal, o);
            total_streamed += stream->bytes_received();
            if (r.skipped > 0) {
                resumed = true;
                CHECK_FALSE(stream->whole_file_checked());
                REQUIRE(fetcher.offsets.size() == 2);
                CHECK(fetcher.offsets[1] > kPreambleSize + f.info.header_length);
            }
            break;
        } catch (const Error& e) {
            INFO(e.what());
            CHECK(e.kind() == ErrorKind::Network);
            auto state = journal.load();
            if (state && state->next_op > 0) resumed = true;
        }
    }
    REQUIRE(journal.load());
    CHECK(journal.load()->complete);
    CHECK(resumed);
    CHECK(f.written() == f.image);
}
