// The kernel's crypto API over AF_ALG sockets: whatever "sha256"/"sha512" implementation the kernel
// prefers, a hash engine such as NXP's CAAM or the kernel's ARMv8 SHA-2 code. One bound socket per
// algorithm; each computation is a socket accept()ed from it, fed with send(MSG_MORE) and
// finished by read(). Needs CONFIG_CRYPTO_USER_API_HASH (the algif_hash module).
#include "hal/hash_engine.h"

#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <cerrno>
#include <cstring>
#include <linux/if_alg.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

namespace ota::hal {

namespace {

const char* kernel_name(HashAlgorithm a) {
    return a == HashAlgorithm::Sha256 ? "sha256" : "sha512";
}

// A socket bound to one hash algorithm, or the reason there is none.
UniqueFd bind_hash_socket(HashAlgorithm algorithm, std::string* why) {
    UniqueFd fd(::socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!fd) {
        const int err = errno;
        *why = err == EAFNOSUPPORT
                   ? std::string("the kernel has no AF_ALG sockets (socket(AF_ALG): ") +
                         std::strerror(err) + "; needs CONFIG_CRYPTO_USER_API_HASH)"
                   : std::string("socket(AF_ALG): ") + std::strerror(err);
        return UniqueFd();
    }
    sockaddr_alg address{};
    address.salg_family = AF_ALG;
    std::strncpy(reinterpret_cast<char*>(address.salg_type), "hash", sizeof address.salg_type);
    std::strncpy(reinterpret_cast<char*>(address.salg_name), kernel_name(algorithm),
                 sizeof address.salg_name - 1);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        const int err = errno;
        *why = std::string("the kernel's crypto API has no ") + kernel_name(algorithm) +
               " hash for AF_ALG (bind: " + std::strerror(err) +
               (err == ENOENT ? std::string("; are algif_hash and a module with the kernel's ") +
                                    kernel_name(algorithm) + " code loaded?)"
                              : std::string(")"));
        return UniqueFd();
    }
    return fd;
}

class KernelStream : public HashStream {
public:
    KernelStream(int bound, HashAlgorithm algorithm)
        : fd_(::accept4(bound, nullptr, nullptr, SOCK_CLOEXEC)), length_(hash_length(algorithm)) {
        if (!fd_) fail("accept");
    }

    void update(const void* data, size_t size) override {
        const char* p = static_cast<const char*>(data);
        while (size > 0) {
            ssize_t n = ::send(fd_.get(), p, size, MSG_MORE);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) fail("send");
            p += n;
            size -= static_cast<size_t>(n);
        }
    }

    void finish(uint8_t* out) override {
        ssize_t n;
        do {
            n = ::read(fd_.get(), out, length_);
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(length_)) fail("read");
    }

private:
    [[noreturn]] static void fail(const char* call) {
        throw Error(ErrorKind::Unsupported,
                    std::string("kernel hash (AF_ALG) ") + call + ": " + std::strerror(errno));
    }

    UniqueFd fd_;
    size_t length_;
};

// Without a SHA-512 socket it is only ever asked for SHA-256 (open_kernel_engine puts a stand-in
// in front of it).
class KernelHashEngine : public HashEngine {
public:
    KernelHashEngine(UniqueFd sha256, UniqueFd sha512)
        : sha256_(std::move(sha256)), sha512_(std::move(sha512)) {}
    std::string name() const override { return "kernel"; }
    std::unique_ptr<HashStream> start(HashAlgorithm algorithm) override {
        return std::make_unique<KernelStream>(
            algorithm == HashAlgorithm::Sha256 ? sha256_.get() : sha512_.get(), algorithm);
    }

private:
    UniqueFd sha256_;
    UniqueFd sha512_;
};

} // namespace

EngineProbe open_kernel_engine() {
    std::string why;
    UniqueFd sha256 = bind_hash_socket(HashAlgorithm::Sha256, &why);
    if (!sha256) return {nullptr, why};
    UniqueFd sha512 = bind_hash_socket(HashAlgorithm::Sha512, &why);
    if (sha512)
        return {std::make_unique<KernelHashEngine>(std::move(sha256), std::move(sha512)), ""};
    // Most of what the agent hashes is SHA-256 (blobs, chunks, read-back); SHA-512 is for the
    // TUF targets that list it.
    EngineProbe mbedtls = open_mbedtls_engine();
    return {with_stand_in(std::make_unique<KernelHashEngine>(std::move(sha256), UniqueFd()),
                          HashAlgorithm::Sha512, std::move(mbedtls.engine), why),
            ""};
}

} // namespace ota::hal
