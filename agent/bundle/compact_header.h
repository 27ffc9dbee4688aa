// The compact bundle header (format 3, manifests/BUNDLE.md): the same fields as the JSON header of
// formats 1 and 2 in a binary body (LEB128 integers, raw 32-byte hashes, offsets that follow from
// the op order left out), compressed as one zstd frame. Tiny deltas of large images are then a few
// hundred bytes instead of several kilobytes of hex and decimal text.
//
// Only the encoding lives here; header.h dispatches on the format and applies every rule of the
// format to the decoded Header.
#pragma once
#include "agent/bundle/format.h"

#include <string>

namespace ota::bundle {

// True when the header bytes start with a zstd frame (format 3); JSON headers start with '{'.
bool is_compact_header(const std::string& bytes);

// The binary body of a format 3 header (not compressed). The header must be valid.
std::string compact_body(const Header& header);

// Decodes a body into a Header without checking the format's rules (validate_header does), but
// bounding every count before allocating. Refuses truncated bodies and trailing bytes.
Header parse_compact_body(const std::string& body);

// The body compressed as one zstd frame that declares its size: the header bytes of the bundle.
std::string compress_compact_body(const std::string& body);

// The inverse, refusing anything but exactly one frame declaring at most kMaxHeaderSize bytes.
std::string decompress_compact_header(const std::string& bytes);

} // namespace ota::bundle
