// The deflate Diff blob ("OTADIFF3", deflate_diff_format.h): the applier side. apply_diff()
// hands such blobs here.
#pragma once
#include "agent/bundle/format.h"
#include "hal/block_device.h"

#include <cstdint>
#include <vector>

namespace ota::delta {

// Same contract as apply_diff (diff.h): reads the source only inside `allowed`, writes exactly
// out_size bytes, throws Error(Malformed) on any inconsistency. Memory: the op's decompressed
// bytes and sources (bounded in deflate_diff_format.h), a deflate window, the Diff's streams.
void apply_deflate_diff(const uint8_t* blob, size_t blob_size, hal::BlockDevice& source,
                        const std::vector<bundle::Extent>& allowed, uint8_t* out, size_t out_size);

} // namespace ota::delta
