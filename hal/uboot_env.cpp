#include "hal/uboot_env.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/fs.h>
#include <sstream>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

namespace ota::hal {

namespace {

constexpr size_t kCrcSize = 4;
// Offsets beyond 2^60 bytes are not a real device; bounding them keeps the arithmetic exact.
constexpr uint64_t kMaxDeviceOffset = uint64_t{1} << 60;

size_t header_size(bool redundant) {
    return redundant ? kCrcSize + 1 : kCrcSize;
}

uint32_t crc32_of(const char* data, size_t size) {
    uLong crc = ::crc32(0L, Z_NULL, 0);
    // zlib takes uInt lengths; env sizes are bounded by kMaxEnvSize so one call is enough.
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(size));
    return static_cast<uint32_t>(crc);
}

Error config_error(const std::string& origin, size_t line, const std::string& what) {
    return Error(ErrorKind::Config, origin + " line " + std::to_string(line) + ": " + what);
}

// Parses a whole token as an unsigned/signed number in the given base (0 = C notation).
bool parse_number(const std::string& token, int base, int64_t* out) {
    if (token.empty()) return false;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(token.c_str(), &end, base);
    if (errno != 0 || end == token.c_str() || *end != '\0') return false;
    *out = v;
    return true;
}

bool parse_hex_size(const std::string& token, uint64_t* out) {
    if (token.empty() || token[0] == '-' || token[0] == '+') return false;
    errno = 0;
    char* end = nullptr;
    unsigned long long v = std::strtoull(token.c_str(), &end, 16);
    if (errno != 0 || end == token.c_str() || *end != '\0') return false;
    *out = v;
    return true;
}

std::string hex(uint64_t v) {
    std::ostringstream s;
    s << "0x" << std::hex << v;
    return s.str();
}

std::string describe(const EnvLocation& loc) {
    return loc.device + "@" +
           (loc.offset < 0 ? "-" + hex(static_cast<uint64_t>(-loc.offset))
                           : hex(static_cast<uint64_t>(loc.offset)));
}

// Resolves a location's byte offset on its device (negative offsets count from the end).
uint64_t resolve_offset(int fd, const EnvLocation& loc) {
    if (loc.offset >= 0) return static_cast<uint64_t>(loc.offset);
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + loc.device);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    if (S_ISBLK(st.st_mode) && ::ioctl(fd, BLKGETSIZE64, &size) != 0)
        throw Error(ErrorKind::Io, "cannot read the size of " + loc.device);
    uint64_t back = static_cast<uint64_t>(-loc.offset);
    if (back > size)
        throw Error(ErrorKind::Config,
                    "environment offset " + describe(loc) + " lies before the start of the device");
    return size - back;
}

// flock() on libubootenv's lock file for the lifetime of the object; best effort like
// libubootenv itself (a missing /var/lock must not stop the agent).
class EnvLock {
public:
    explicit EnvLock(const std::string& path) {
        if (path.empty()) return;
        fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd_ >= 0 && ::flock(fd_, LOCK_EX) != 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }
    ~EnvLock() {
        if (fd_ >= 0) {
            ::flock(fd_, LOCK_UN);
            ::close(fd_);
        }
    }
    EnvLock(const EnvLock&) = delete;
    EnvLock& operator=(const EnvLock&) = delete;

private:
    int fd_ = -1;
};

} // namespace

EnvConfig parse_fw_env_config(const std::string& text) {
    const std::string origin = "fw_env.config";
    EnvConfig config;
    std::istringstream lines(text);
    std::string line;
    size_t line_no = 0;
    while (std::getline(lines, line)) {
        ++line_no;
        if (line.size() > 4096) throw config_error(origin, line_no, "line too long");
        auto hash = line.find('#');
        if (hash != std::string::npos) line.erase(hash);
        std::istringstream fields(line);
        std::vector<std::string> tok;
        std::string t;
        while (fields >> t)
            tok.push_back(t);
        if (tok.empty()) continue;
        if (tok.size() < 3)
            throw config_error(origin, line_no,
                               "expected 'device offset envsize', got '" + line + "'");
        if (tok.size() > 5) throw config_error(origin, line_no, "too many fields (at most 5)");
        if (config.copies.size() == 2)
            throw config_error(origin, line_no,
                               "more than two environment copies (one line = single copy, two "
                               "lines = redundant)");
        EnvLocation loc;
        loc.device = tok[0];
        if (loc.device.rfind("/dev/mtd", 0) == 0 || loc.device.rfind("/dev/ubi", 0) == 0)
            throw Error(ErrorKind::Unsupported,
                        origin + " line " + std::to_string(line_no) + ": " + loc.device +
                            ": MTD/UBI environments are not supported (block devices and files "
                            "only)");
        if (!parse_number(tok[1], 0, &loc.offset) || loc.offset < -int64_t(kMaxDeviceOffset) ||
            loc.offset > int64_t(kMaxDeviceOffset))
            throw config_error(origin, line_no, "bad offset '" + tok[1] + "'");
        if (!parse_hex_size(tok[2], &loc.size))
            throw config_error(origin, line_no, "bad environment size '" + tok[2] + "' (hex)");
        if (loc.size < kMinEnvSize || loc.size > kMaxEnvSize)
            throw config_error(origin, line_no,
                               "environment size " + hex(loc.size) + " outside [" +
                                   hex(kMinEnvSize) + ", " + hex(kMaxEnvSize) + "]");
        if (tok.size() > 3 && !parse_hex_size(tok[3], &loc.sector_size))
            throw config_error(origin, line_no, "bad sector size '" + tok[3] + "' (hex)");
        if (tok.size() > 4 && !parse_hex_size(tok[4], &loc.sectors))
            throw config_error(origin, line_no, "bad sector count '" + tok[4] + "' (hex)");
        if (!config.copies.empty() && config.copies.front().size != loc.size)
            throw config_error(origin, line_no,
                               "the two environment copies must have the same size");
        config.copies.push_back(loc);
    }
    if (config.copies.empty())
        throw Error(ErrorKind::Config, origin + ": no environment location configured");
    return config;
}

EnvConfig load_fw_env_config(const std::string& path) {
    std::string text = read_file(path, 64 * 1024);
    try {
        return parse_fw_env_config(text);
    } catch (const Error& e) {
        std::string msg = e.what();
        const std::string prefix = "fw_env.config";
        if (msg.rfind(prefix, 0) == 0) msg = path + msg.substr(prefix.size());
        throw Error(e.kind(), msg);
    }
}

std::string format_fw_env_config(const EnvConfig& config) {
    std::ostringstream out;
    out << "# device offset envsize [sectorsize [sectors]]\n";
    for (const auto& c : config.copies) {
        out << c.device << " "
            << (c.offset < 0 ? "-" + hex(static_cast<uint64_t>(-c.offset))
                             : hex(static_cast<uint64_t>(c.offset)))
            << " " << hex(c.size);
        if (c.sector_size || c.sectors) out << " " << hex(c.sector_size);
        if (c.sectors) out << " " << hex(c.sectors);
        out << "\n";
    }
    return out.str();
}

void validate_env_variable(const std::string& name, const std::string& value) {
    if (name.empty()) throw Error(ErrorKind::Malformed, "environment variable with an empty name");
    if (name.find('=') != std::string::npos || name.find('\0') != std::string::npos)
        throw Error(ErrorKind::Malformed,
                    "environment variable name contains '=' or NUL: '" + name + "'");
    if (value.find('\0') != std::string::npos)
        throw Error(ErrorKind::Malformed,
                    "value of environment variable " + name + " contains a NUL byte");
}

std::string encode_env_copy(const EnvVars& vars, uint64_t env_size, std::optional<uint8_t> flags) {
    if (env_size < kMinEnvSize || env_size > kMaxEnvSize)
        throw Error(ErrorKind::Config, "environment size " + hex(env_size) + " out of range");
    const size_t header = header_size(flags.has_value());
    const size_t capacity = static_cast<size_t>(env_size) - header;
    size_t needed = 1; // the terminating empty entry
    for (const auto& [name, value] : vars) {
        validate_env_variable(name, value);
        needed += name.size() + value.size() + 2;
    }
    if (needed > capacity)
        throw Error(ErrorKind::TooLarge, "environment needs " + std::to_string(needed) +
                                             " bytes but the area holds " +
                                             std::to_string(capacity));
    std::string image(static_cast<size_t>(env_size), '\0');
    size_t pos = header;
    for (const auto& [name, value] : vars) {
        image.replace(pos, name.size(), name);
        pos += name.size();
        image[pos++] = '=';
        image.replace(pos, value.size(), value);
        pos += value.size() + 1; // NUL already there
    }
    if (flags) image[kCrcSize] = static_cast<char>(*flags);
    uint32_t crc = crc32_of(image.data() + header, capacity);
    for (size_t i = 0; i < kCrcSize; ++i)
        image[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
    return image;
}

EnvCopy inspect_env_copy(const std::string& image, bool redundant) {
    const size_t header = header_size(redundant);
    if (image.size() < header + 1) throw Error(ErrorKind::Malformed, "environment copy too small");
    EnvCopy copy;
    uint32_t stored = 0;
    for (size_t i = 0; i < kCrcSize; ++i)
        stored |= static_cast<uint32_t>(static_cast<uint8_t>(image[i])) << (8 * i);
    if (redundant) copy.flags = static_cast<uint8_t>(image[kCrcSize]);
    copy.data = image.substr(header);
    copy.crc_ok = crc32_of(copy.data.data(), copy.data.size()) == stored;
    return copy;
}

EnvVars decode_env_entries(const std::string& data) {
    EnvVars vars;
    size_t pos = 0;
    while (true) {
        if (pos >= data.size())
            throw Error(ErrorKind::Malformed,
                        "environment has no end marker (missing empty entry)");
        if (data[pos] == '\0') break; // empty entry = end of the list
        size_t end = data.find('\0', pos);
        if (end == std::string::npos)
            throw Error(ErrorKind::Malformed, "environment entry at offset " + std::to_string(pos) +
                                                  " is not NUL-terminated");
        size_t eq = data.find('=', pos);
        if (eq == std::string::npos || eq >= end || eq == pos)
            throw Error(ErrorKind::Malformed, "environment entry at offset " + std::to_string(pos) +
                                                  " is not name=value");
        // A later duplicate overrides an earlier one, as U-Boot's import does.
        vars[data.substr(pos, eq - pos)] = data.substr(eq + 1, end - eq - 1);
        pos = end + 1;
    }
    return vars;
}

int select_active_copy(const EnvCopy& first, const EnvCopy& second) {
    if (!first.crc_ok && !second.crc_ok)
        throw Error(ErrorKind::Malformed, "both copies of the U-Boot environment have bad CRCs");
    if (!second.crc_ok) return 0;
    if (!first.crc_ok) return 1;
    // Incremental flags (block devices, files, NAND): the counter wraps from 0xFF to 0.
    if (first.flags == 0xFF && second.flags == 0) return 1;
    if (second.flags == 0xFF && first.flags == 0) return 0;
    return second.flags > first.flags ? 1 : 0;
}

UBootEnv::UBootEnv(EnvConfig config, std::string lock_path)
    : config_(std::move(config)), lock_path_(std::move(lock_path)) {
    if (config_.copies.empty() || config_.copies.size() > 2)
        throw Error(ErrorKind::Config, "an environment has one or two copies");
    for (const auto& c : config_.copies)
        if (c.size != config_.env_size() || c.size < kMinEnvSize || c.size > kMaxEnvSize)
            throw Error(ErrorKind::Config, "bad environment size for " + describe(c));
}

UBootEnv UBootEnv::from_config_file(const std::string& config_path, const std::string& lock_path) {
    return UBootEnv(load_fw_env_config(config_path), lock_path);
}

std::string UBootEnv::read_copy_image(size_t index) const {
    const EnvLocation& loc = config_.copies.at(index);
    UniqueFd fd = open_or_throw(loc.device, O_RDONLY);
    uint64_t offset = resolve_offset(fd.get(), loc);
    std::string image(static_cast<size_t>(loc.size), '\0');
    pread_all(fd.get(), image.data(), image.size(), offset, "U-Boot environment " + describe(loc));
    return image;
}

void UBootEnv::write_copy_image(size_t index, const std::string& image) {
    const EnvLocation& loc = config_.copies.at(index);
    UniqueFd fd = open_or_throw(loc.device, O_RDWR);
    uint64_t offset = resolve_offset(fd.get(), loc);
    std::string what = "U-Boot environment " + describe(loc);
    pwrite_all(fd.get(), image.data(), image.size(), offset, what);
    fsync_or_throw(fd.get(), what);
}

std::vector<EnvCopy> UBootEnv::inspect_copies() const {
    EnvLock lock(lock_path_);
    std::vector<EnvCopy> copies;
    for (size_t i = 0; i < config_.copies.size(); ++i)
        copies.push_back(inspect_env_copy(read_copy_image(i), config_.redundant()));
    return copies;
}

int UBootEnv::active_copy() const {
    auto copies = inspect_copies();
    if (!config_.redundant()) {
        if (!copies[0].crc_ok)
            throw Error(ErrorKind::Malformed, "the U-Boot environment has a bad CRC");
        return 0;
    }
    return select_active_copy(copies[0], copies[1]);
}

EnvVars UBootEnv::read_unlocked(int* active, uint8_t* active_flags) const {
    std::vector<EnvCopy> copies;
    for (size_t i = 0; i < config_.copies.size(); ++i)
        copies.push_back(inspect_env_copy(read_copy_image(i), config_.redundant()));
    int chosen = 0;
    if (config_.redundant()) {
        try {
            chosen = select_active_copy(copies[0], copies[1]);
        } catch (const Error& e) {
            throw Error(e.kind(), std::string(e.what()) + " (" + describe(config_.copies[0]) +
                                      ", " + describe(config_.copies[1]) + ")");
        }
    } else if (!copies[0].crc_ok) {
        throw Error(ErrorKind::Malformed,
                    "the U-Boot environment at " + describe(config_.copies[0]) + " has a bad CRC");
    }
    if (active) *active = chosen;
    if (active_flags) *active_flags = copies[static_cast<size_t>(chosen)].flags;
    return decode_env_entries(copies[static_cast<size_t>(chosen)].data);
}

void UBootEnv::write_unlocked(const EnvVars& vars) {
    // Serialise first: a bad name or an oversized environment must change nothing.
    if (!config_.redundant()) {
        std::string image = encode_env_copy(vars, config_.env_size(), std::nullopt);
        write_copy_image(0, image);
        return;
    }
    int active = 0;
    uint8_t flags = 0;
    read_unlocked(&active, &flags);
    std::string image = encode_env_copy(vars, config_.env_size(), static_cast<uint8_t>(flags + 1));
    write_copy_image(active == 0 ? 1 : 0, image);
}

EnvVars UBootEnv::read() const {
    EnvLock lock(lock_path_);
    return read_unlocked(nullptr, nullptr);
}

void UBootEnv::write(const EnvVars& vars) {
    EnvLock lock(lock_path_);
    write_unlocked(vars);
}

void UBootEnv::update(const std::function<void(EnvVars&)>& change) {
    EnvLock lock(lock_path_);
    EnvVars vars = read_unlocked(nullptr, nullptr);
    change(vars);
    write_unlocked(vars);
}

void UBootEnv::initialize(const EnvVars& vars) {
    EnvLock lock(lock_path_);
    if (!config_.redundant()) {
        write_copy_image(0, encode_env_copy(vars, config_.env_size(), std::nullopt));
        return;
    }
    // Copy 1 first with the older flags, then copy 0 as the active one.
    std::string older = encode_env_copy(vars, config_.env_size(), uint8_t{0});
    std::string newer = encode_env_copy(vars, config_.env_size(), uint8_t{1});
    write_copy_image(1, older);
    write_copy_image(0, newer);
}

} // namespace ota::hal
