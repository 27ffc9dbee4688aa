// Atomic files: what the trusted metadata relies on.
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "support/test_support.h"

#include <catch2/catch.hpp>
#include <sys/stat.h>

using namespace ota;
using namespace ota::test;

TEST_CASE("write_file_atomic replaces the whole file and leaves no temporary behind") {
    TempDir dir;
    const std::string path = dir.file("trusted.json");
    write_file_atomic(path, "first version, longer");
    write_file_atomic(path, "second");
    CHECK(read_all(path) == "second");
    CHECK(file_size(path) == 6);
    CHECK_FALSE(file_exists(path + ".tmp"));
}

TEST_CASE("write_file_atomic into a missing directory fails and creates nothing") {
    TempDir dir;
    CHECK_THROWS_AS(write_file_atomic(dir.file("missing/x.json"), "x"), Error);
    CHECK_FALSE(file_exists(dir.file("missing")));
}

TEST_CASE("read_file refuses files larger than the bound") {
    TempDir dir;
    write_all_file(dir.file("big"), std::string(1000, 'x'));
    CHECK(read_file(dir.file("big"), 1000).size() == 1000);
    try {
        read_file(dir.file("big"), 999);
        FAIL("no error");
    } catch (const Error& e) {
        CHECK(e.kind() == ErrorKind::TooLarge);
    }
    CHECK_THROWS_AS(read_file(dir.file("absent"), 10), Error);
}

TEST_CASE("make_directories, remove_file_durable and rename_durable") {
    TempDir dir;
    make_directories(dir.file("a/b/c"));
    struct stat st {};
    REQUIRE(::stat(dir.file("a/b/c").c_str(), &st) == 0);
    CHECK(S_ISDIR(st.st_mode));
    write_file_atomic(dir.file("a/f"), "data");
    rename_durable(dir.file("a/f"), dir.file("a/b/g"));
    CHECK(read_all(dir.file("a/b/g")) == "data");
    remove_file_durable(dir.file("a/b/g"));
    CHECK_FALSE(file_exists(dir.file("a/b/g")));
    CHECK_NOTHROW(remove_file_durable(dir.file("a/b/g"))); // absent is fine
    CHECK(join_path("a", "b") == "a/b");
    CHECK(parent_directory("/x/y/z") == "/x/y");
}
