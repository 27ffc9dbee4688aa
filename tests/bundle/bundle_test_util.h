// Shared by the bundle tests.
#pragma once
#include "agent/common/error.h"

#include <catch2/catch.hpp>
#include <string>

namespace ota::test {

// The kind of the ota::Error that `f` throws (and its message); a test failure if it throws none.
template <class F> ErrorKind error_kind_of(F&& f, std::string* message = nullptr) {
    try {
        f();
    } catch (const Error& e) {
        if (message) *message = e.what();
        return e.kind();
    }
    FAIL("expected an ota::Error");
    return ErrorKind::State;
}

} // namespace ota::test
