// Offline application of a bundle to plain files (ota-agent apply, integrators, benchmarks).
#pragma once
#include <string>

namespace ota::bundle {

// Applies `bundle` to `output` (created or resized to exactly target_size bytes), reading the
// delta's source from `source` when given. With no signed metadata offline, the header is checked
// against itself; every blob, the source hash and the final image hash are still verified.
// Progress is journaled in output + ".journal", so an interrupted run resumes. Returns 0 only if
// `output` is now exactly the target image; otherwise 1 with a message in *error (if non-null).
int apply_bundle_file(const std::string& bundle, const std::string* source,
                      const std::string& output, std::string* error);

} // namespace ota::bundle
