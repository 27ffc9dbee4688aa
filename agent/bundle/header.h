// Serialization and strict parsing of the bundle header (see manifests/BUNDLE.md).
//
// Formats 1 and 2 are canonical JSON, format 3 a compressed binary body (compact_header.h).
// parse_header() accepts exactly what header_bytes() produces for a valid Header (for format 3: the
// decompressed body must be exactly the one header_bytes() compresses): unknown keys, missing keys,
// wrong types, non-canonical encodings and every inconsistency between fields are refused with
// ota::Error(Malformed) or, for values above the bounds in format.h, ota::Error(TooLarge). Messages
// name the field and the op index.
#pragma once
#include "agent/bundle/format.h"

#include <optional>
#include <string>
#include <vector>

namespace ota::bundle {

// Parses "zero", "zstd", "copy", "zstd_patch", "diff"; nullopt for anything else.
std::optional<OpType> parse_op_type(const std::string& name);

// The canonical header bytes of a format 1 or 2 header. Does not validate: call validate_header()
// first when the Header was assembled by hand (BundleWriter does).
std::string header_to_json(const Header& header);

// The header bytes for header.format: JSON (1, 2) or the compressed compact body (3).
std::string header_bytes(const Header& header);

// Which source chunks some op's src_extents touch (extents beyond the source mark nothing).
// The source must have per-chunk hashes (chunk_size != 0).
std::vector<bool> source_chunks_read(const SourceImage& source, const std::vector<Operation>& ops);

// Format 3's source.chunk_root: the SHA-256 of the chunk hashes (hex, all present) as raw bytes.
std::string chunk_hash_root(const std::vector<std::string>& chunk_sha256);

// Checks every rule of the format on an in-memory Header (the same rules parse_header applies).
void validate_header(const Header& header);

// Sum of the data_length of all ops: the size of the blob area (valid headers only).
uint64_t blob_area_size(const Header& header);

// Parses and validates header bytes. Refuses more than kMaxHeaderSize bytes before parsing.
Header parse_header(const std::string& bytes);

} // namespace ota::bundle
