#include "error.h"

namespace ota {

const char* error_kind_name(ErrorKind kind) {
    switch (kind) {
    case ErrorKind::Io: return "io";
    case ErrorKind::Network: return "network";
    case ErrorKind::NotFound: return "not-found";
    case ErrorKind::TooLarge: return "too-large";
    case ErrorKind::Malformed: return "malformed";
    case ErrorKind::BadSignature: return "bad-signature";
    case ErrorKind::Expired: return "expired";
    case ErrorKind::Rollback: return "rollback";
    case ErrorKind::HashMismatch: return "hash-mismatch";
    case ErrorKind::WrongHardware: return "wrong-hardware";
    case ErrorKind::SourceMismatch: return "source-mismatch";
    case ErrorKind::Config: return "config";
    case ErrorKind::State: return "state";
    case ErrorKind::Unsupported: return "unsupported";
    }
    return "unknown";
}

} // namespace ota
