// Errors raised across the agent. Every failure carries a kind (so callers can react, e.g. fall
// back from a delta to a full bundle) and a message specific enough for an integrator to act on.
#pragma once
#include <stdexcept>
#include <string>

namespace ota {

enum class ErrorKind {
    Io,             // local storage: open/read/write/fsync/rename failed, disk full, read-only
    Network,        // transport failure: unreachable, reset, timeout, HTTP status
    NotFound,       // remote object absent (HTTP 404, missing file)
    TooLarge,       // a body or field exceeds the bound allowed by trusted metadata or a cap
    Malformed,      // input does not parse (JSON, bundle header, environment)
    BadSignature,   // signature threshold not met
    Expired,        // metadata expired at the update start time
    Rollback,       // version lower than trusted / installed
    HashMismatch,   // content does not match the hash it is signed under
    WrongHardware,  // no target for this hardware id
    SourceMismatch, // delta source (the old slot) is not the image the delta was made against
    Config,         // invalid configuration
    State,          // operation not valid in the current update state
    Unsupported,
};

const char* error_kind_name(ErrorKind kind);

class Error : public std::runtime_error {
public:
    Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    ErrorKind kind() const { return kind_; }

private:
    ErrorKind kind_;
};

} // namespace ota
