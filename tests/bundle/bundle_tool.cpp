// Benchmark/debug helper (not a test): builds a full bundle from an image or applies a bundle to a
// file, so /usr/bin/time can measure each step on its own.
//   bundle_tool build IMAGE BUNDLE [zstd-level] [chunk-bytes]
//   bundle_tool apply BUNDLE OUTPUT [SOURCE]
#include "agent/bundle/apply_file.h"
#include "agent/bundle/writer.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: %s build IMAGE BUNDLE [level] [chunk] | apply BUNDLE OUT "
                     "[SOURCE]\n",
                     argv[0]);
        return 2;
    }
    const std::string cmd = argv[1];
    auto start = std::chrono::steady_clock::now();
    int rc = 0;
    if (cmd == "build") {
        ota::bundle::FullBundleOptions o;
        if (argc > 4) o.zstd_level = std::atoi(argv[4]);
        if (argc > 5) o.chunk_size = std::strtoull(argv[5], nullptr, 10);
        auto info = ota::bundle::build_full_bundle(argv[2], argv[3], o);
        std::printf(
            "bundle %llu bytes, %zu ops, header %llu bytes sha256 %s\n",
            static_cast<unsigned long long>(info.bundle_length), info.header.operations.size(),
            static_cast<unsigned long long>(info.header_length), info.header_sha256.c_str());
    } else if (cmd == "apply") {
        std::string source = argc > 4 ? argv[4] : "";
        std::string error;
        rc = ota::bundle::apply_bundle_file(argv[2], argc > 4 ? &source : nullptr, argv[3], &error);
        if (rc) std::fprintf(stderr, "apply failed: %s\n", error.c_str());
    } else {
        return 2;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s: %.3f s\n", cmd.c_str(), s);
    return rc;
}
