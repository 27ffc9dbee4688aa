// The bsdiff-class "Diff" operation of a bundle (see manifests/BUNDLE.md): the applier side,
// linked into the agent. The encoder lives in diff_encode.h and is only linked by ota-publish.
#pragma once
#include "agent/bundle/format.h"
#include "hal/block_device.h"

#include <cstdint>
#include <vector>

namespace ota::delta {

// Applies one Diff blob (already verified against its SHA-256 by the caller). Reads the source
// image only inside `allowed` (the op's src_extents) and writes exactly out_size bytes to `out`.
// Throws ota::Error(Malformed) on a blob that is inconsistent or reads outside `allowed`.
void apply_diff(const uint8_t* blob, size_t blob_size, hal::BlockDevice& source,
                const std::vector<bundle::Extent>& allowed, uint8_t* out, size_t out_size);

} // namespace ota::delta
