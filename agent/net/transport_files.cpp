#include "agent/net/transport_files.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>

namespace ota::net {

void require_readable_file(const std::string& key, const std::string& path) {
    auto bad = [&](const std::string& why) {
        throw Error(ErrorKind::Config, "configuration: \"" + key + "\" names " + path + ", " + why);
    };
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) bad(std::string("which cannot be read: ") + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) bad("which is not a regular file");
}

void check_transport_files(const TransportOptions& o) {
    if (!o.ca_file.empty()) require_readable_file("transport.ca_file", o.ca_file);
    if (!o.client_cert.empty()) require_readable_file("transport.client_cert", o.client_cert);
    if (!o.client_key.empty()) require_readable_file("transport.client_key", o.client_key);
    // "sha256//BASE64;sha256//..." is a list of hashes; anything else is a key file.
    if (!o.pinned_public_key.empty() && o.pinned_public_key.rfind("sha256//", 0) != 0)
        require_readable_file("transport.pinned_public_key", o.pinned_public_key);
}

} // namespace ota::net
