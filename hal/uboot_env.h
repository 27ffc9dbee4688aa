// The U-Boot environment in the binary format shared by U-Boot and libubootenv
// (fw_printenv/fw_setenv):
//   single copy:    CRC-32 (LE) | name=value\0 ... name=value\0 \0 | padding to env size
//   redundant copy: CRC-32 (LE) | flags byte | entries as above      | padding to env size
// The CRC (zlib crc32) covers everything after the header, padding included. A redundant
// environment has two such copies at two device/offset locations; the copy with a good CRC and the
// newest flags is active, and a write goes to the OTHER copy with flags+1, then fsync, so a power
// cut during a write leaves the previous environment intact.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace ota::hal {

// Environments bigger than this are refused: real ones are 8-256 KiB.
constexpr uint64_t kMaxEnvSize = 1024 * 1024;
constexpr uint64_t kMinEnvSize = 16;
// The lock file that libubootenv's fw_printenv/fw_setenv take, so we never interleave with them.
constexpr const char* kDefaultEnvLockPath = "/var/lock/fw_printenv.lock";

// One line of /etc/fw_env.config: `device offset envsize [sectorsize [sectors]]`.
struct EnvLocation {
    std::string device;
    int64_t offset = 0; // negative = from the end of the device (as libubootenv)
    uint64_t size = 0;  // env size in bytes, header included
    uint64_t sector_size = 0;
    uint64_t sectors = 0;
};

struct EnvConfig {
    std::vector<EnvLocation> copies; // 1 = single copy, 2 = redundant
    bool redundant() const { return copies.size() == 2; }
    uint64_t env_size() const { return copies.empty() ? 0 : copies.front().size; }
};

// Parses fw_env.config text with libubootenv's number rules: offset in C notation (0x.. hex,
// decimal, may be negative), env size / sector size / sector count always hex ("4000" = 0x4000).
// Lines starting with '#' (and anything after a '#') are comments. Throws Error(Config).
EnvConfig parse_fw_env_config(const std::string& text);
EnvConfig load_fw_env_config(const std::string& path = "/etc/fw_env.config");
std::string format_fw_env_config(const EnvConfig& config);

// Variables, sorted by name (the order libubootenv writes them in).
using EnvVars = std::map<std::string, std::string>;

// Name: non-empty, no '=' and no NUL; value: no NUL. Throws Error(Malformed).
void validate_env_variable(const std::string& name, const std::string& value);

// Serialises one copy (header included) of exactly env_size bytes. flags is the redundant flags
// byte, or nullopt for the single-copy layout. Throws Malformed (bad name) or TooLarge.
std::string encode_env_copy(const EnvVars& vars, uint64_t env_size, std::optional<uint8_t> flags);

// What one stored copy looks like, before any choice between copies.
struct EnvCopy {
    bool crc_ok = false;
    uint8_t flags = 0; // redundant layout only
    std::string data;  // the area after the header (covered by the CRC)
};
EnvCopy inspect_env_copy(const std::string& image, bool redundant);

// Parses the entries of a copy whose CRC is good. Throws Error(Malformed) on an unterminated or
// nameless entry.
EnvVars decode_env_entries(const std::string& data);

// Which copy (0 or 1) libubootenv treats as active given the two copies: the only one with a good
// CRC, else the one with the larger flags, where 0 after 0xFF counts as newer (wrap-around), and
// copy 0 on a tie. Throws Error(Malformed) when both CRCs are bad.
int select_active_copy(const EnvCopy& first, const EnvCopy& second);

// Where the boot variables live: the environment on flash or disk (UBootEnv) or, in the engine's
// tests, memory. Boot control and the boot script work on either.
class EnvStorage {
public:
    virtual ~EnvStorage() = default;
    virtual EnvVars read() const = 0;
    // Read-modify-write: exactly one write of the whole environment.
    virtual void update(const std::function<void(EnvVars&)>& change) = 0;
};

// An environment stored on devices or files described by an EnvConfig.
class UBootEnv : public EnvStorage {
public:
    // lock_path: flock()ed around each access, best effort (libubootenv's convention); "" = none.
    explicit UBootEnv(EnvConfig config, std::string lock_path = "");
    static UBootEnv from_config_file(const std::string& config_path = "/etc/fw_env.config",
                                     const std::string& lock_path = kDefaultEnvLockPath);

    const EnvConfig& config() const { return config_; }

    // The active copy's variables. Throws Malformed if no copy has a good CRC, Io on I/O errors.
    EnvVars read() const override;
    // Replaces the whole environment with vars: one write of the inactive copy (or the single
    // copy), fsynced. Needs a readable current environment to know which copy is active.
    void write(const EnvVars& vars);
    // Read-modify-write under the lock: exactly one copy written.
    void update(const std::function<void(EnvVars&)>& change) override;
    // Writes a fresh environment to every copy, whatever is there now (factory provisioning and
    // recovery from a fully corrupt environment). Copy 0 becomes active.
    void initialize(const EnvVars& vars);

    // For diagnostics and tests: the raw state of each copy and the active one.
    std::vector<EnvCopy> inspect_copies() const;
    int active_copy() const;

private:
    std::string read_copy_image(size_t index) const;
    void write_copy_image(size_t index, const std::string& image);
    EnvVars read_unlocked(int* active, uint8_t* active_flags) const;
    void write_unlocked(const EnvVars& vars);

    EnvConfig config_;
    std::string lock_path_;
};

} // namespace ota::hal
