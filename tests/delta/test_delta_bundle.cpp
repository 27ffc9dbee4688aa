// Delta bundles end to end: build_delta_bundle -> the real bundle reader and streaming installer
// (with apply_diff registered as the agent does), wrong sources, and resume after kills.
#include "agent/bundle/apply_file.h"
#include "agent/bundle/header.h"
#include "agent/bundle/installer.h"
#include "agent/bundle/reader.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/delta/delta_bundle.h"
#include "agent/delta/diff.h"
#include "delta_test_util.h"

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

using namespace ota;
using namespace ota::test;

namespace {

delta::DeltaOptions small_ops() {
    delta::DeltaOptions opt;
    opt.op_size = 16384;
    opt.max_extents = 4;
    return opt;
}

// Installs bundle into dir/target (pre-filled with `fill`) from dir/old; returns the target bytes.
std::string install(const TempDir& dir, const std::string& bundle_path, size_t target_size,
                    char fill = '\x55') {
    write_all_file(dir.file("target"), std::string(target_size, fill));
    auto bundle = bundle::BundleFile::open_self_verified(bundle_path);
    auto source = hal::open_block_device(dir.file("old"), false);
    auto target = hal::open_block_device(dir.file("target"), true);
    bundle::InstallJournal journal(dir.file("journal"));
    bundle::InstallOptions options;
    options.apply_diff = delta::apply_diff;
    bundle::install_bundle(bundle, source.get(), *target, journal, options);
    return read_all(dir.file("target"));
}

std::string modified_binary() {
    std::string m = read_all("/bin/ls");
    m.insert(m.size() / 3, pseudo_random_bytes(1500, 3));
    for (size_t i = 64; i + 4 < m.size(); i += 2048)
        m[i] = char(m[i] + 16);
    m.erase(m.size() * 2 / 3, 4000);
    return m;
}

} // namespace

TEST_CASE("delta bundles round trip through the installer") {
    auto pairs = synthetic_pairs();
    pairs.push_back({"real executable", read_all("/bin/ls"), modified_binary()});
    for (const auto& pair : pairs) {
        INFO(pair.name);
        TempDir dir;
        write_all_file(dir.file("old"), pair.old_image);
        write_all_file(dir.file("new"), pair.new_image);
        delta::DeltaStats stats;
        auto info = delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"),
                                              small_ops(), &stats);
        REQUIRE(info.header.source);
        REQUIRE(info.header.source->size == pair.old_image.size());
        REQUIRE(info.header.target_size == pair.new_image.size());
        REQUIRE(info.header.max_op_output <= 16384);
        REQUIRE(install(dir, dir.file("bundle"), pair.new_image.size()) == pair.new_image);
        if (pair.name == "real executable") REQUIRE(info.bundle_length < pair.new_image.size() / 5);
        if (pair.name == "identical")
            REQUIRE(stats.ops[static_cast<int>(bundle::OpType::Copy)] > 0);
    }
}

TEST_CASE("apply_bundle_file applies a delta bundle to a file") {
    TempDir dir;
    std::string old_image = read_all("/bin/ls"), new_image = modified_binary();
    write_all_file(dir.file("old"), old_image);
    write_all_file(dir.file("new"), new_image);
    delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"));
    bundle::register_apply_diff(delta::apply_diff);
    std::string source = dir.file("old"), error;
    REQUIRE(bundle::apply_bundle_file(dir.file("bundle"), &source, dir.file("out"), &error) == 0);
    REQUIRE(read_all(dir.file("out")) == new_image);
}

TEST_CASE("a delta bundle refuses a different source slot before writing") {
    TempDir dir;
    std::string old_image = pseudo_random_bytes(100000, 61), new_image = old_image;
    new_image.insert(5000, "new bytes");
    write_all_file(dir.file("old"), old_image);
    write_all_file(dir.file("new"), new_image);
    delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"), small_ops());

    SECTION("one byte of the source differs") {
        std::string changed = old_image;
        changed[99999] ^= 1;
        write_all_file(dir.file("old"), changed);
    }
    SECTION("the source is shorter") {
        write_all_file(dir.file("old"), old_image.substr(0, 99999));
    }
    try {
        install(dir, dir.file("bundle"), new_image.size());
        FAIL("installed from a wrong source");
    } catch (const Error& e) {
        REQUIRE(e.kind() == ErrorKind::SourceMismatch);
    }
    REQUIRE(read_all(dir.file("target")) == std::string(new_image.size(), '\x55'));
}

TEST_CASE("a delta install killed after any operation resumes to the exact image") {
    TempDir dir;
    std::string old_image = read_all("/bin/ls"), new_image = modified_binary();
    write_all_file(dir.file("old"), old_image);
    write_all_file(dir.file("new"), new_image);
    delta::DeltaStats stats;
    auto info = delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"),
                                          small_ops(), &stats);
    const size_t ops = info.header.operations.size();
    REQUIRE(ops > 5);
    REQUIRE(stats.ops[static_cast<int>(bundle::OpType::Diff)] > 0);

    for (size_t kill_at = 0; kill_at < ops; kill_at += std::max<size_t>(1, ops / 12)) {
        INFO("killed after op " << kill_at);
        write_all_file(dir.file("target"), std::string(new_image.size(), '\x55'));
        remove_file_durable(dir.file("journal"));
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            // The child dies abruptly, with no cleanup, right after writing op kill_at.
            try {
                auto bundle = bundle::BundleFile::open_self_verified(dir.file("bundle"));
                auto source = hal::open_block_device(dir.file("old"), false);
                auto target = hal::open_block_device(dir.file("target"), true);
                bundle::InstallJournal journal(dir.file("journal"));
                bundle::InstallOptions options;
                options.apply_diff = delta::apply_diff;
                options.checkpoint_bytes = 0;
                options.after_op_written = [&](size_t index) {
                    if (index == kill_at) _exit(42);
                };
                bundle::install_bundle(bundle, source.get(), *target, journal, options);
            } catch (...) {
                _exit(1);
            }
            _exit(0);
        }
        int status = 0;
        REQUIRE(waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        REQUIRE(WEXITSTATUS(status) == 42);

        auto bundle = bundle::BundleFile::open_self_verified(dir.file("bundle"));
        auto source = hal::open_block_device(dir.file("old"), false);
        auto target = hal::open_block_device(dir.file("target"), true);
        bundle::InstallJournal journal(dir.file("journal"));
        bundle::InstallOptions options;
        options.apply_diff = delta::apply_diff;
        auto result = bundle::install_bundle(bundle, source.get(), *target, journal, options);
        REQUIRE(result.skipped <= kill_at + 1);
        target.reset();
        REQUIRE(read_all(dir.file("target")) == new_image);
    }
}

TEST_CASE("a delta checks the source chunks its operations read, and only those") {
    // old = [1 MiB never used | 2 MiB the new image starts with]; new = that 2 MiB + fresh bytes.
    TempDir dir;
    const std::string unused = pseudo_random_bytes(1 << 20, 81);
    const std::string kept = pseudo_random_bytes(2 << 20, 82);
    const std::string old_image = unused + kept;
    std::string new_image = kept + pseudo_random_bytes(70000, 83);
    new_image[1000] ^= 0x10;
    write_all_file(dir.file("old"), old_image);
    write_all_file(dir.file("new"), new_image);
    // Format 3 carries the unread chunk's hash and a root over all three; format 2 all three.
    const bool compact = GENERATE(true, false);
    delta::DeltaOptions options;
    options.compact_header = compact;
    auto info =
        delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"), options);
    const bundle::SourceImage& source = *info.header.source;
    REQUIRE(info.header.format == (compact ? bundle::kFormatCompact : bundle::kFormatChunkHashes));
    REQUIRE(source.chunk_size == (1u << 20)); // 3 MiB: 1 MiB chunks (at most 32 of them)
    REQUIRE(source.chunk_sha256.size() == 3);
    REQUIRE(source.chunk_sha256[0] == sha256_hex(unused));
    if (compact) {
        CHECK(source.chunk_sha256[2].empty());
        CHECK(source.chunk_root ==
              bundle::chunk_hash_root({sha256_hex(unused), sha256_hex(kept.substr(0, 1 << 20)),
                                       sha256_hex(kept.substr(1 << 20))}));
    }
    bool reads_chunk0 = false, reads_chunk2 = false;
    for (const auto& op : info.header.operations)
        for (const auto& e : op.src_extents) {
            reads_chunk0 |= e.offset < source.chunk_size;
            reads_chunk2 |= e.offset + e.length > 2 * source.chunk_size;
        }
    REQUIRE_FALSE(reads_chunk0); // the premise of this test
    REQUIRE(reads_chunk2);

    std::string changed = old_image;
    SECTION("a changed byte in a chunk that is read: refused before any write") {
        changed[(2 << 20) + 12345] ^= 0x01;
        write_all_file(dir.file("old"), changed);
        std::string message;
        try {
            install(dir, dir.file("bundle"), new_image.size());
            FAIL("installed from a modified source");
        } catch (const Error& e) {
            REQUIRE(e.kind() == ErrorKind::SourceMismatch);
            message = e.what();
        }
        CHECK_THAT(message, Catch::Contains(compact ? "does not match source.chunk_root"
                                                    : "bytes 2097152..3145728"));
        CHECK(read_all(dir.file("target")) == std::string(new_image.size(), '\x55'));
    }
    SECTION("a changed byte in a chunk nothing reads: no source byte of it reaches the target") {
        changed[4321] ^= 0x01;
        write_all_file(dir.file("old"), changed);
        CHECK(install(dir, dir.file("bundle"), new_image.size()) == new_image);
    }
}

TEST_CASE("a one-byte change of a 64 MiB image is a bundle under 1 KB") {
    // A format property: 32 copy ops, one small diff op, and a compact header (the source chunks
    // are all read, so they cost one root hash). Format 2 spelled the same delta in over 5 KB.
    TempDir dir;
    std::string old_image = pseudo_random_bytes(64 << 20, 91);
    write_all_file(dir.file("old"), old_image);
    old_image[(40 << 20) + 12345] ^= 0x5a;
    const std::string& new_image = old_image;
    write_all_file(dir.file("new"), new_image);
    delta::DeltaOptions options;
    options.arm64_min_call_density = 0; // random bytes: no code to filter
    auto info =
        delta::build_delta_bundle(dir.file("old"), dir.file("new"), dir.file("bundle"), options);
    CHECK(info.header.format == bundle::kFormatCompact);
    CHECK(info.bundle_length < 1000);
    CHECK(info.header_length < 600);
    CHECK(install(dir, dir.file("bundle"), new_image.size()) == new_image);
}
