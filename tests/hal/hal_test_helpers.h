// Small helpers shared by the HAL tests: environments in temporary files.
#pragma once
#include "hal/uboot_env.h"
#include "support/test_support.h"

#include <fstream>
#include <string>

namespace ota::test {

// A fw_env.config in dir for one copy at offset 0, or two copies in the same file.
inline std::string write_env_config(const TempDir& dir, bool redundant, uint64_t size = 0x4000,
                                    const std::string& file = "uboot.env") {
    std::string env = dir.file(file);
    std::string config = dir.file(redundant ? "fw_env_redundant.config" : "fw_env.config");
    {
        std::ofstream out(env, std::ios::binary | std::ios::trunc);
        out << std::string(redundant ? 2 * size : size, '\0');
    }
    std::ofstream out(config, std::ios::trunc);
    out << "# test environment\n" << env << " 0x0 0x" << std::hex << size << "\n";
    if (redundant) out << env << " 0x" << std::hex << size << " 0x" << size << "\n";
    return config;
}

inline void patch_byte(const std::string& path, uint64_t offset, char value) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(value);
}

} // namespace ota::test
