#include "agent/bundle/header.h"

#include "agent/bundle/compact_header.h"
#include "agent/common/canonical_json.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/hex.h"

#include <set>

namespace ota::bundle {

const char* op_type_name(OpType type) {
    switch (type) {
    case OpType::Zero: return "zero";
    case OpType::Zstd: return "zstd";
    case OpType::Copy: return "copy";
    case OpType::ZstdPatch: return "zstd_patch";
    case OpType::Diff: return "diff";
    }
    return "unknown";
}

bool op_has_blob(OpType type) {
    return type == OpType::Zstd || type == OpType::ZstdPatch || type == OpType::Diff;
}

bool op_reads_source(OpType type) {
    return type == OpType::Copy || type == OpType::ZstdPatch || type == OpType::Diff;
}

std::optional<OpType> parse_op_type(const std::string& name) {
    for (OpType t : {OpType::Zero, OpType::Zstd, OpType::Copy, OpType::ZstdPatch, OpType::Diff})
        if (name == op_type_name(t)) return t;
    return std::nullopt;
}

namespace {

[[noreturn]] void malformed(const std::string& msg) {
    throw Error(ErrorKind::Malformed, "bundle header: " + msg);
}
[[noreturn]] void too_large(const std::string& msg) {
    throw Error(ErrorKind::TooLarge, "bundle header: " + msg);
}

std::string op_name(size_t i) {
    return "operations[" + std::to_string(i) + "]";
}

bool is_sha256_hex(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

void check_sha256(const std::string& s, const std::string& field) {
    if (!is_sha256_hex(s)) malformed(field + " must be 64 lowercase hex characters");
}

// Overflow-safe a + b <= limit.
bool fits(uint64_t a, uint64_t b, uint64_t limit) {
    return a <= limit && b <= limit - a;
}

// A chunk list of an image of `size` bytes: `prefix` + "chunk_size" / "chunk_sha256" name the
// fields in messages.
void check_chunk_list(uint64_t size, uint64_t chunk_size, const std::vector<std::string>& hashes,
                      const std::string& size_field, const std::string& hashes_field) {
    const uint64_t c = chunk_size;
    if (c < kMinHashChunk || c > kMaxHashChunk || (c & (c - 1)) != 0)
        malformed(size_field + " " + std::to_string(c) + " is not a power of two between " +
                  std::to_string(kMinHashChunk) + " and " + std::to_string(kMaxHashChunk));
    const uint64_t count = size / c + (size % c != 0);
    if (hashes.size() != count)
        malformed(hashes_field + " has " + std::to_string(hashes.size()) + " hashes, an image of " +
                  std::to_string(size) + " bytes in chunks of " + std::to_string(c) + " needs " +
                  std::to_string(count));
    for (size_t i = 0; i < hashes.size(); ++i)
        check_sha256(hashes[i], hashes_field + "[" + std::to_string(i) + "]");
}

// SHA-256 of zero bytes: the whole-image hash of an empty target.
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

void check_path(const std::string& path, const std::string& field) {
    if (path.empty()) malformed(field + " is empty");
    if (path.size() > kMaxFilePathLength) too_large(field + " is longer than the limit");
    if (path.front() == '/') malformed(field + " must be relative: " + path);
    size_t start = 0;
    while (start <= path.size()) {
        size_t end = path.find('/', start);
        if (end == std::string::npos) end = path.size();
        std::string part = path.substr(start, end - start);
        if (part.empty() || part == "." || part == "..")
            malformed(field + " has an empty, '.' or '..' component: " + path);
        for (char c : part)
            if (c == '\0' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
                malformed(field + " contains a control character or backslash");
        start = end + 1;
    }
}

// --- JSON shape helpers: every object must have exactly the expected keys -----------------------

const Json& member(const Json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) malformed(where + " is missing \"" + key + "\"");
    return *it;
}

void check_keys(const Json& obj, std::initializer_list<const char*> allowed,
                const std::string& where) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        bool ok = false;
        for (const char* k : allowed)
            ok = ok || it.key() == k;
        if (!ok) malformed(where + " has an unexpected key \"" + it.key() + "\"");
    }
}

uint64_t get_u64(const Json& obj, const char* key, const std::string& where) {
    const Json& v = member(obj, key, where);
    if (!v.is_number_unsigned()) malformed(where + "." + key + " must be a non-negative integer");
    return v.get<uint64_t>();
}

std::string get_string(const Json& obj, const char* key, const std::string& where) {
    const Json& v = member(obj, key, where);
    if (!v.is_string()) malformed(where + "." + key + " must be a string");
    return v.get<std::string>();
}

const Json& get_array(const Json& obj, const char* key, const std::string& where) {
    const Json& v = member(obj, key, where);
    if (!v.is_array()) malformed(where + "." + key + " must be an array");
    return v;
}

// A list of per-chunk hashes, its length bounded before the entries are read.
std::vector<std::string> get_hash_list(const Json& obj, const char* key, const std::string& where) {
    const Json& hashes = get_array(obj, key, where);
    const std::string field = (where == "header" ? "" : where + ".") + key;
    if (hashes.size() > kMaxHashChunks)
        too_large(field + " has " + std::to_string(hashes.size()) + " hashes, more than " +
                  std::to_string(kMaxHashChunks));
    std::vector<std::string> out;
    out.reserve(hashes.size());
    for (const Json& x : hashes) {
        if (!x.is_string()) malformed(field + " entries must be strings");
        out.push_back(x.get<std::string>());
    }
    return out;
}

Json op_to_json(const Operation& op) {
    Json j = Json::object();
    j["type"] = op_type_name(op.type);
    j["dst_offset"] = op.dst_offset;
    j["dst_length"] = op.dst_length;
    if (op_reads_source(op.type)) {
        Json ex = Json::array();
        for (const Extent& e : op.src_extents)
            ex.push_back(Json::array({e.offset, e.length}));
        j["src_extents"] = std::move(ex);
    }
    if (op_has_blob(op.type)) {
        j["data_offset"] = op.data_offset;
        j["data_length"] = op.data_length;
        j["data_sha256"] = op.data_sha256;
    }
    return j;
}

Operation op_from_json(const Json& j, size_t i) {
    const std::string where = op_name(i);
    if (!j.is_object()) malformed(where + " must be an object");
    Operation op;
    auto type = parse_op_type(get_string(j, "type", where));
    if (!type) malformed(where + ".type is not a known operation kind");
    op.type = *type;
    if (op_has_blob(op.type) && op_reads_source(op.type))
        check_keys(j,
                   {"type", "dst_offset", "dst_length", "src_extents", "data_offset", "data_length",
                    "data_sha256"},
                   where);
    else if (op_has_blob(op.type))
        check_keys(
            j, {"type", "dst_offset", "dst_length", "data_offset", "data_length", "data_sha256"},
            where);
    else if (op_reads_source(op.type))
        check_keys(j, {"type", "dst_offset", "dst_length", "src_extents"}, where);
    else
        check_keys(j, {"type", "dst_offset", "dst_length"}, where);
    op.dst_offset = get_u64(j, "dst_offset", where);
    op.dst_length = get_u64(j, "dst_length", where);
    if (op_reads_source(op.type)) {
        const Json& ex = get_array(j, "src_extents", where);
        if (ex.size() > kMaxSourceExtents)
            too_large(where + ".src_extents has " + std::to_string(ex.size()) +
                      " extents, more than " + std::to_string(kMaxSourceExtents));
        op.src_extents.reserve(ex.size());
        for (size_t k = 0; k < ex.size(); ++k) {
            const Json& e = ex[k];
            const std::string ew = where + ".src_extents[" + std::to_string(k) + "]";
            if (!e.is_array() || e.size() != 2 || !e[0].is_number_unsigned() ||
                !e[1].is_number_unsigned())
                malformed(ew + " must be [offset, length] (non-negative integers)");
            op.src_extents.push_back({e[0].get<uint64_t>(), e[1].get<uint64_t>()});
        }
    }
    if (op_has_blob(op.type)) {
        op.data_offset = get_u64(j, "data_offset", where);
        op.data_length = get_u64(j, "data_length", where);
        op.data_sha256 = get_string(j, "data_sha256", where);
    }
    return op;
}

void validate_op(const Header& h, size_t i, uint64_t expected_dst, uint64_t expected_data) {
    const Operation& op = h.operations[i];
    const std::string where = op_name(i);
    if (op.dst_length == 0) malformed(where + ".dst_length is 0");
    if (op.dst_length > kMaxOpOutput)
        too_large(where + ".dst_length " + std::to_string(op.dst_length) + " exceeds the limit " +
                  std::to_string(kMaxOpOutput));
    if (op.dst_offset != expected_dst)
        malformed(where + ".dst_offset is " + std::to_string(op.dst_offset) + ", expected " +
                  std::to_string(expected_dst) +
                  " (ops must be in write order with contiguous dst ranges)");
    if (op_has_blob(op.type)) {
        if (op.data_length == 0) malformed(where + ".data_length is 0");
        if (op.data_length > kMaxBlobSize)
            too_large(where + ".data_length " + std::to_string(op.data_length) +
                      " exceeds the limit " + std::to_string(kMaxBlobSize));
        if (op.data_offset != expected_data)
            malformed(where + ".data_offset is " + std::to_string(op.data_offset) + ", expected " +
                      std::to_string(expected_data) + " (blobs must be contiguous in op order)");
        check_sha256(op.data_sha256, where + ".data_sha256");
    } else if (op.data_length != 0 || op.data_offset != 0 || !op.data_sha256.empty()) {
        malformed(where + " (" + op_type_name(op.type) + ") must not carry data");
    }
    if (op_reads_source(op.type)) {
        if (!h.source) malformed(where + " reads the source but the header has no source image");
        if (op.src_extents.empty()) malformed(where + ".src_extents is empty");
        if (op.src_extents.size() > kMaxSourceExtents)
            too_large(where + ".src_extents has more than " + std::to_string(kMaxSourceExtents) +
                      " extents");
        uint64_t total = 0;
        for (size_t k = 0; k < op.src_extents.size(); ++k) {
            const Extent& e = op.src_extents[k];
            const std::string ew = where + ".src_extents[" + std::to_string(k) + "]";
            if (e.length == 0) malformed(ew + " has length 0");
            if (!fits(e.offset, e.length, h.source->size))
                malformed(ew + " reaches beyond the source size " + std::to_string(h.source->size));
            if (!fits(total, e.length, UINT64_MAX)) malformed(ew + " overflows");
            total += e.length;
        }
        if (op.type == OpType::Copy && total != op.dst_length)
            malformed(where + " copies " + std::to_string(total) + " source bytes into " +
                      std::to_string(op.dst_length) + " target bytes");
        if (op.type == OpType::ZstdPatch && total > kMaxPatchSource)
            too_large(where + " uses " + std::to_string(total) +
                      " source bytes as prefix, more than " + std::to_string(kMaxPatchSource));
    } else if (!op.src_extents.empty()) {
        malformed(where + " (" + op_type_name(op.type) + ") must not have src_extents");
    }
}

// Format 3: the chunk list holds a hash for exactly the chunks no op reads (the agent computes
// the others), and chunk_root sums up all of them. Runs before the ops are validated, so extents
// beyond the source count for nothing here and are refused there.
void check_source_root(const Header& h) {
    const SourceImage& src = *h.source;
    check_sha256(src.chunk_root, "source.chunk_root");
    std::vector<std::string> present(src.chunk_sha256.size());
    for (size_t i = 0; i < present.size(); ++i)
        present[i] = src.chunk_sha256[i].empty() ? std::string(64, '0') : src.chunk_sha256[i];
    check_chunk_list(src.size, src.chunk_size, present, "source.chunk_size", "source.chunk_sha256");
    const std::vector<bool> read = source_chunks_read(src, h.operations);
    for (size_t i = 0; i < read.size(); ++i)
        if (read[i] != src.chunk_sha256[i].empty())
            malformed("source.chunk_sha256[" + std::to_string(i) + "] must " +
                      (read[i] ? "be left out: an op reads that chunk"
                               : "be listed: no op reads that chunk"));
}

} // namespace

void validate_header(const Header& h) {
    if (h.format != kFormatWholeImageHash && h.format != kFormatChunkHashes &&
        h.format != kFormatCompact)
        malformed("format " + std::to_string(h.format) + " is not supported");
    if (h.payload_kind != "firmware" && h.payload_kind != "model")
        malformed("payload_kind must be \"firmware\" or \"model\"");
    check_sha256(h.target_sha256, "target_sha256");
    if (h.format != kFormatWholeImageHash) {
        check_chunk_list(h.target_size, h.target_chunk_size, h.target_chunk_sha256,
                         "target_chunk_size", "target_chunk_sha256");
        // Where one list entry covers the whole image, the two hashes name the same bytes.
        if (h.target_size == 0 && h.target_sha256 != kEmptySha256)
            malformed("target_sha256 is not the SHA-256 of an empty image");
        if (h.target_chunk_sha256.size() == 1 && h.target_chunk_sha256[0] != h.target_sha256)
            malformed("target_chunk_sha256[0] covers the whole image but differs from "
                      "target_sha256");
    } else if (h.target_chunk_size != 0 || !h.target_chunk_sha256.empty()) {
        malformed("per-chunk target hashes need format " + std::to_string(kFormatChunkHashes));
    }
    if (h.source) {
        check_sha256(h.source->sha256, "source.sha256");
        const SourceImage& src = *h.source;
        if (h.format == kFormatCompact && src.chunk_size != 0)
            check_source_root(h);
        else if (!src.chunk_root.empty())
            malformed("source.chunk_root needs format " + std::to_string(kFormatCompact) +
                      " and source.chunk_size");
        else if (src.chunk_size != 0 || !src.chunk_sha256.empty())
            check_chunk_list(src.size, src.chunk_size, src.chunk_sha256, "source.chunk_size",
                             "source.chunk_sha256");
    }
    if (h.operations.size() > kMaxOperations)
        too_large(std::to_string(h.operations.size()) + " operations, more than " +
                  std::to_string(kMaxOperations));
    if (h.files.size() > kMaxFiles)
        too_large(std::to_string(h.files.size()) + " files, more than " +
                  std::to_string(kMaxFiles));
    uint64_t dst = 0, data = 0, max_out = 0;
    for (size_t i = 0; i < h.operations.size(); ++i) {
        validate_op(h, i, dst, data);
        const Operation& op = h.operations[i];
        if (!fits(dst, op.dst_length, UINT64_MAX)) malformed(op_name(i) + " overflows");
        dst += op.dst_length;
        data += op.data_length; // each <= kMaxBlobSize, count <= kMaxOperations: no overflow
        max_out = std::max(max_out, op.dst_length);
    }
    if (dst != h.target_size)
        malformed("operations cover " + std::to_string(dst) + " bytes but target_size is " +
                  std::to_string(h.target_size));
    if (h.max_op_output != max_out)
        malformed("max_op_output is " + std::to_string(h.max_op_output) +
                  " but the largest dst_length is " + std::to_string(max_out));
    uint64_t file_end = 0;
    std::set<std::string> paths;
    for (size_t i = 0; i < h.files.size(); ++i) {
        const FileEntry& f = h.files[i];
        const std::string where = "files[" + std::to_string(i) + "]";
        check_path(f.path, where + ".path");
        if (!paths.insert(f.path).second) malformed(where + ".path is a duplicate: " + f.path);
        if (f.mode > 07777) malformed(where + ".mode is not a permission mode");
        if (!fits(f.offset, f.length, h.target_size))
            malformed(where + " reaches beyond target_size");
        if (f.offset < file_end)
            malformed(where + " overlaps the previous file or is out of order (files must be "
                              "sorted by offset)");
        file_end = f.offset + f.length;
    }
}

std::vector<bool> source_chunks_read(const SourceImage& src, const std::vector<Operation>& ops) {
    std::vector<bool> read(src.chunk_sha256.size(), false);
    if (src.chunk_size == 0) return read;
    for (const Operation& op : ops)
        for (const Extent& e : op.src_extents) {
            if (e.length == 0 || !fits(e.offset, e.length, src.size)) continue;
            const uint64_t last = (e.offset + e.length - 1) / src.chunk_size;
            for (uint64_t c = e.offset / src.chunk_size; c <= last && c < read.size(); ++c)
                read[c] = true;
        }
    return read;
}

std::string chunk_hash_root(const std::vector<std::string>& chunk_sha256) {
    Hasher root;
    for (const std::string& c : chunk_sha256) {
        const std::vector<uint8_t> raw = from_hex(c);
        root.update(raw.data(), raw.size());
    }
    return root.finish_hex();
}

uint64_t blob_area_size(const Header& h) {
    uint64_t total = 0;
    for (const Operation& op : h.operations)
        total += op.data_length;
    return total;
}

std::string header_to_json(const Header& h) {
    Json j = Json::object();
    j["format"] = h.format;
    j["payload_kind"] = h.payload_kind;
    j["target_size"] = h.target_size;
    j["target_sha256"] = h.target_sha256;
    if (h.format == kFormatChunkHashes) {
        j["target_chunk_size"] = h.target_chunk_size;
        j["target_chunk_sha256"] = h.target_chunk_sha256;
    }
    if (h.source) {
        j["source"] = Json{{"size", h.source->size}, {"sha256", h.source->sha256}};
        if (h.source->chunk_size != 0) {
            j["source"]["chunk_size"] = h.source->chunk_size;
            j["source"]["chunk_sha256"] = h.source->chunk_sha256;
        }
    }
    j["max_op_output"] = h.max_op_output;
    Json ops = Json::array();
    for (const Operation& op : h.operations)
        ops.push_back(op_to_json(op));
    j["operations"] = std::move(ops);
    Json files = Json::array();
    for (const FileEntry& f : h.files)
        files.push_back(
            Json{{"path", f.path}, {"offset", f.offset}, {"length", f.length}, {"mode", f.mode}});
    j["files"] = std::move(files);
    return canonical_json(j);
}

std::string header_bytes(const Header& h) {
    if (h.format == kFormatCompact) return compress_compact_body(compact_body(h));
    return header_to_json(h);
}

namespace {

Header parse_compact_header(const std::string& bytes) {
    const std::string body = decompress_compact_header(bytes);
    Header h = parse_compact_body(body);
    validate_header(h);
    // One body per header: a varint longer than needed would let two bodies mean the same thing.
    // (The compressed bytes themselves are pinned by the signed header_sha256.)
    if (compact_body(h) != body) malformed("body is not in canonical form");
    return h;
}

} // namespace

Header parse_header(const std::string& bytes) {
    if (bytes.size() > kMaxHeaderSize)
        too_large("length " + std::to_string(bytes.size()) + " exceeds the limit " +
                  std::to_string(kMaxHeaderSize));
    if (is_compact_header(bytes)) return parse_compact_header(bytes);
    Header h;
    {
        Json j = parse_json(bytes, "bundle header");
        if (!j.is_object()) malformed("must be a JSON object");
        const uint64_t format = get_u64(j, "format", "header");
        if (format == kFormatWholeImageHash)
            check_keys(j,
                       {"format", "payload_kind", "target_size", "target_sha256", "source",
                        "max_op_output", "operations", "files"},
                       "header");
        else if (format == kFormatChunkHashes)
            check_keys(j,
                       {"format", "payload_kind", "target_size", "target_sha256",
                        "target_chunk_size", "target_chunk_sha256", "source", "max_op_output",
                        "operations", "files"},
                       "header");
        else
            malformed("format " + std::to_string(format) + " is not supported");
        h.format = static_cast<uint32_t>(format);
        h.payload_kind = get_string(j, "payload_kind", "header");
        h.target_size = get_u64(j, "target_size", "header");
        h.target_sha256 = get_string(j, "target_sha256", "header");
        if (h.format == kFormatChunkHashes) {
            h.target_chunk_size = get_u64(j, "target_chunk_size", "header");
            h.target_chunk_sha256 = get_hash_list(j, "target_chunk_sha256", "header");
        }
        if (j.contains("source")) {
            const Json& s = j["source"];
            if (!s.is_object()) malformed("source must be an object");
            check_keys(s, {"size", "sha256", "chunk_size", "chunk_sha256"}, "source");
            h.source = SourceImage{get_u64(s, "size", "source"), get_string(s, "sha256", "source")};
            if (s.contains("chunk_size") || s.contains("chunk_sha256")) {
                h.source->chunk_size = get_u64(s, "chunk_size", "source");
                h.source->chunk_sha256 = get_hash_list(s, "chunk_sha256", "source");
            }
        }
        h.max_op_output = get_u64(j, "max_op_output", "header");
        const Json& ops = get_array(j, "operations", "header");
        if (ops.size() > kMaxOperations)
            too_large(std::to_string(ops.size()) + " operations, more than " +
                      std::to_string(kMaxOperations));
        h.operations.reserve(ops.size());
        for (size_t i = 0; i < ops.size(); ++i)
            h.operations.push_back(op_from_json(ops[i], i));
        const Json& files = get_array(j, "files", "header");
        if (files.size() > kMaxFiles)
            too_large(std::to_string(files.size()) + " files, more than " +
                      std::to_string(kMaxFiles));
        for (size_t i = 0; i < files.size(); ++i) {
            const Json& f = files[i];
            const std::string where = "files[" + std::to_string(i) + "]";
            if (!f.is_object()) malformed(where + " must be an object");
            check_keys(f, {"path", "offset", "length", "mode"}, where);
            FileEntry e;
            e.path = get_string(f, "path", where);
            e.offset = get_u64(f, "offset", where);
            e.length = get_u64(f, "length", where);
            uint64_t mode = get_u64(f, "mode", where);
            if (mode > 07777) malformed(where + ".mode is not a permission mode");
            e.mode = static_cast<uint32_t>(mode);
            h.files.push_back(std::move(e));
        }
    } // the DOM is freed before validation and re-serialization
    validate_header(h);
    // One encoding per header: duplicate keys, whitespace or escapes that parse to the same value
    // would let two different byte strings mean the same thing.
    if (header_to_json(h) != bytes) malformed("not in canonical JSON form");
    return h;
}

} // namespace ota::bundle
