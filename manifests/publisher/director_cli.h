// `ota-publish director ...`: the director repository commands (docs/uptane.md).
#pragma once

namespace ota::publish {

// argv[0] is the program, argv[1] "director". Returns the exit status; throws ota::Error.
int run_director(int argc, char** argv);

} // namespace ota::publish
