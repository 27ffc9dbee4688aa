// Helpers for the deflate tests: sample data that compresses like firmware (code, text, zero
// runs, noise), deflate streams made by zlib with any parameters and by GNU gzip, and parsing a
// stream into its tokens.
#pragma once
#include "agent/deflate/lz77_predictor.h"
#include "agent/deflate/puff.h"
#include "support/test_support.h"

#include <zlib.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace ota::test {

// About `size` bytes: pieces of /bin/ls, numbered text lines, zero runs and random bytes.
inline std::string sample_data(size_t size, uint64_t seed = 1) {
    const std::string code = read_all("/bin/ls");
    std::string out;
    uint64_t i = 0;
    while (out.size() < size) {
        switch (i % 4) {
        case 0: out += code.substr((i * 7919) % (code.size() - 5000), 3000 + i % 2000); break;
        case 1:
            for (int k = 0; k < 40; ++k)
                out += "entry " + std::to_string((i * 31 + k * 7) % 500) + " = value\n";
            break;
        case 2: out += std::string(100 + i % 700, '\0'); break;
        case 3: out += pseudo_random_bytes(200 + i % 300, seed + i); break;
        }
        ++i;
    }
    out.resize(size);
    return out;
}

// zlib's deflate of data with the given parameters: raw (window_bits 9-15), zlib wrapper
// (window_bits + 0) or gzip wrapper (window_bits + 16).
inline std::string zlib_deflate(const std::string& data, int level, int window_bits = -15,
                                int mem_level = 8, int strategy = Z_DEFAULT_STRATEGY) {
    z_stream z{};
    if (deflateInit2(&z, level, Z_DEFLATED, window_bits, mem_level, strategy) != Z_OK)
        throw std::runtime_error("deflateInit2");
    std::string out(deflateBound(&z, data.size()) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = ::deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("deflate");
    return out;
}

// zlib's inflate of a raw deflate stream.
inline std::string zlib_inflate(const std::string& stream) {
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) throw std::runtime_error("inflateInit2");
    std::string out;
    std::string buf(1 << 16, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stream.data()));
    z.avail_in = static_cast<uInt>(stream.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf.data());
        z.avail_out = static_cast<uInt>(buf.size());
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf.data(), buf.size() - z.avail_out);
        if (rc == Z_BUF_ERROR) break;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("inflate");
    return out;
}

// GNU gzip's output for data at a level (-n: no name or time in the header).
inline std::string gnu_gzip(const std::string& data, int level) {
    TempDir dir;
    write_all_file(dir.file("in"), data);
    const std::string cmd =
        "gzip -n -" + std::to_string(level) + " -c " + dir.file("in") + " > " + dir.file("out");
    if (run_command(cmd) != 0) throw std::runtime_error("gzip failed");
    return read_all(dir.file("out"));
}

// The raw deflate stream inside a gzip member without name or extra fields.
inline std::string gzip_body(const std::string& member) {
    return member.substr(10, member.size() - 18);
}

struct ParsedTokens {
    std::string u;
    std::vector<deflate::Token> tokens;
    size_t blocks = 0;
};

// Parses a raw deflate stream into its decompressed bytes and tokens (stored bytes as literals).
inline ParsedTokens parse_tokens(const std::string& stream) {
    struct Visitor : deflate::DeflateVisitor {
        ParsedTokens r;
        void block(const deflate::BlockHeader&, uint64_t) override { r.blocks++; }
        void literal(uint8_t b, uint64_t) override {
            r.u.push_back(static_cast<char>(b));
            r.tokens.push_back({});
        }
        void match(const deflate::Match& m, uint64_t) override {
            if (m.distance > r.u.size()) throw std::runtime_error("distance too far back");
            const size_t from = r.u.size() - m.distance;
            for (unsigned i = 0; i < m.length; ++i)
                r.u.push_back(r.u[from + i]);
            r.tokens.push_back({static_cast<uint16_t>(m.long_258 ? 259 : m.length), m.distance});
        }
        void stored(const uint8_t* d, size_t n, uint64_t) override {
            for (size_t i = 0; i < n; ++i) {
                r.u.push_back(static_cast<char>(d[i]));
                r.tokens.push_back({});
            }
        }
        void end_of_block(uint64_t) override {}
        void end_of_stream(unsigned, unsigned, uint64_t) override {}
    } v;
    deflate::parse_deflate(reinterpret_cast<const uint8_t*>(stream.data()), stream.size(), 0, v);
    return v.r;
}

inline const uint8_t* bytes_of(const std::string& s) {
    return reinterpret_cast<const uint8_t*>(s.data());
}

} // namespace ota::test
