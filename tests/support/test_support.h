// Shared helpers for the test suite: temporary directories, files, running programs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ota::test {

// A fresh directory under $TMPDIR (or /tmp), removed when the object goes out of scope unless
// OTA_KEEP_TEST_DIRS is set.
class TempDir {
public:
    TempDir();
    ~TempDir();
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::string read_all(const std::string& path);
void write_all_file(const std::string& path, const std::string& contents);
// Deterministic pseudo-random bytes (xorshift) so test images are reproducible.
std::string pseudo_random_bytes(size_t size, uint64_t seed);
// Runs a shell command, returns its exit status; output captured into *output if given.
int run_command(const std::string& command, std::string* output = nullptr);
// Path of a program built by this project (e.g. "ota-agent").
std::string built_program(const std::string& name);
// Path of a file in the source tree.
std::string source_path(const std::string& relative);
// A TCP port that is free on 127.0.0.1 right now.
int free_tcp_port();

} // namespace ota::test
