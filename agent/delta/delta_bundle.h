// Delta bundles: the new image encoded against the old one (delta_plan.h) and written through the
// bundle writer, with header.source = {size, SHA-256} of the old image so the agent refuses a
// different source slot before writing anything. Publisher side only.
#pragma once
#include "agent/bundle/writer.h"
#include "agent/delta/delta_plan.h"

#include <string>

namespace ota::delta {

// Encoder cost: the old and new images are mapped, plus the suffix array (4 bytes per old byte up
// to 2 GiB, 8 above), plus per thread about 3 op outputs of working buffers.
bundle::BundleInfo build_delta_bundle(const std::string& old_path, const std::string& new_path,
                                      const std::string& out_path, const DeltaOptions& options = {},
                                      DeltaStats* stats = nullptr);

} // namespace ota::delta
