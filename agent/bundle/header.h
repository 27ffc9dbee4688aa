// Serialization and strict parsing of the bundle header (see manifests/BUNDLE.md).
//
// The header is canonical JSON. parse_header() accepts exactly what header_to_json() produces for a
// valid Header: unknown keys, missing keys, wrong types, non-canonical encodings and every
// inconsistency between fields are refused with ota::Error(Malformed) or, for values above the
// bounds in format.h, ota::Error(TooLarge). Messages name the field and the op index.
#pragma once
#include "agent/bundle/format.h"

#include <optional>
#include <string>

namespace ota::bundle {

// Parses "zero", "zstd", "copy", "zstd_patch", "diff"; nullopt for anything else.
std::optional<OpType> parse_op_type(const std::string& name);

// The canonical header bytes. Does not validate: call validate_header() first when the Header was
// assembled by hand (BundleWriter does).
std::string header_to_json(const Header& header);

// Checks every rule of the format on an in-memory Header (the same rules parse_header applies).
void validate_header(const Header& header);

// Sum of the data_length of all ops: the size of the blob area (valid headers only).
uint64_t blob_area_size(const Header& header);

// Parses and validates header bytes. Refuses more than kMaxHeaderSize bytes before parsing.
Header parse_header(const std::string& bytes);

} // namespace ota::bundle
