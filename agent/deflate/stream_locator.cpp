#include "agent/deflate/stream_locator.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace ota::deflate {

namespace {

uint32_t le16(const uint8_t* p) {
    return p[0] | uint32_t{p[1]} << 8;
}
uint32_t le32(const uint8_t* p) {
    return le16(p) | le16(p + 2) << 16;
}
uint32_t be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}

struct Inflated {
    bool ok = false;
    uint64_t length = 0; // deflate bytes consumed
    uint64_t u_size = 0;
    uint32_t crc = 0;
    uint32_t adler = 0;
};

// Decompresses raw deflate streams without keeping the output, computing their CRC-32 or
// Adler-32; one zlib state and buffer for all the candidates of an image.
class Checker {
public:
    Checker() {
        if (inflateInit2(&z_, -15) != Z_OK) throw std::bad_alloc();
    }
    ~Checker() { inflateEnd(&z_); }
    Checker(const Checker&) = delete;
    Checker& operator=(const Checker&) = delete;

    Inflated check(const uint8_t* data, uint64_t size, uint64_t max_u, bool adler) {
        Inflated r;
        inflateReset(&z_);
        z_.avail_in = 0; // (not reset by inflateReset)
        uLong sum = adler ? adler32(0L, Z_NULL, 0) : crc32(0L, Z_NULL, 0);
        uint64_t fed = 0, in = 0, out = 0;
        int rc = Z_OK;
        while (rc == Z_OK) {
            if (z_.avail_in == 0 && fed < size) {
                const uint64_t n = std::min<uint64_t>(size - fed, 1u << 30);
                z_.next_in = const_cast<Bytef*>(data + fed);
                z_.avail_in = static_cast<uInt>(n);
                fed += n;
            }
            const uInt avail_in = z_.avail_in;
            z_.next_out = out_.data();
            z_.avail_out = static_cast<uInt>(out_.size());
            rc = inflate(&z_, Z_NO_FLUSH);
            const size_t produced = out_.size() - z_.avail_out;
            in += avail_in - z_.avail_in;
            out += produced;
            sum = adler ? adler32(sum, out_.data(), static_cast<uInt>(produced))
                        : crc32(sum, out_.data(), static_cast<uInt>(produced));
            if (out > max_u) rc = Z_DATA_ERROR;
            if (rc == Z_OK && produced == 0 && z_.avail_in == 0 && fed >= size) rc = Z_BUF_ERROR;
        }
        if (rc == Z_STREAM_END) {
            r.ok = true;
            r.length = in;
            r.u_size = out;
            (adler ? r.adler : r.crc) = static_cast<uint32_t>(sum);
        }
        return r;
    }

private:
    z_stream z_{};
    std::vector<uint8_t> out_ = std::vector<uint8_t>(1u << 16);
};

// gzip member at p: returns the deflate offset (0 if the header is not a gzip header).
uint64_t gzip_header(const uint8_t* image, uint64_t size, uint64_t p, std::string* name) {
    if (size - p < 18 || image[p] != 0x1f || image[p + 1] != 0x8b || image[p + 2] != 8) return 0;
    const unsigned flags = image[p + 3];
    if (flags & 0xe0) return 0;
    uint64_t q = p + 10;
    if (flags & 4) { // FEXTRA
        if (size - q < 2) return 0;
        q += 2 + le16(image + q);
    }
    for (unsigned f : {8u, 16u}) { // FNAME, FCOMMENT: zero-terminated
        if (!(flags & f)) continue;
        const uint64_t start = q;
        while (q < size && image[q] != 0)
            ++q;
        if (q >= size) return 0;
        if (f == 8 && name) name->assign(reinterpret_cast<const char*>(image + start), q - start);
        ++q;
    }
    if (flags & 2) q += 2; // FHCRC
    return q < size ? q : 0;
}

} // namespace

std::vector<LocatedStream> locate_deflate_streams(const uint8_t* image, uint64_t size,
                                                  const LocateOptions& options) {
    std::vector<LocatedStream> found;
    Checker checker;
    uint64_t p = 0;
    while (p + 2 < size) {
        const uint8_t* s = image + p;
        LocatedStream st;
        bool ok = false;
        if (s[0] == 0x1f && s[1] == 0x8b) {
            std::string name;
            const uint64_t q = gzip_header(image, size, p, &name);
            if (q) {
                Inflated r = checker.check(image + q, size - q, options.max_u_size, false);
                if (r.ok && size - q - r.length >= 8 && le32(image + q + r.length) == r.crc &&
                    le32(image + q + r.length + 4) == static_cast<uint32_t>(r.u_size)) {
                    st = {q, r.length, r.u_size, p, Wrapper::Gzip, name, 15};
                    ok = true;
                }
            }
        } else if (s[0] == 'P' && s[1] == 'K' && size - p >= 30 && s[2] == 3 && s[3] == 4 &&
                   le16(s + 8) == 8) {
            const uint64_t q = p + 30 + le16(s + 26) + le16(s + 28);
            if (q < size) {
                Inflated r = checker.check(image + q, size - q, options.max_u_size, false);
                uint32_t crc = le32(s + 14);
                if (r.ok && (le16(s + 6) & 8) && crc == 0) {
                    // The CRC follows in a data descriptor (with or without its signature).
                    const uint64_t d = q + r.length;
                    if (size - d >= 16 && le32(image + d) == 0x08074b50)
                        crc = le32(image + d + 4);
                    else if (size - d >= 12)
                        crc = le32(image + d);
                }
                if (r.ok && r.crc == crc) {
                    st = {q,
                          r.length,
                          r.u_size,
                          p,
                          Wrapper::Zip,
                          std::string(reinterpret_cast<const char*>(s + 30), le16(s + 26)),
                          15};
                    ok = true;
                }
            }
        } else if (options.zlib && (s[0] & 0x0f) == 8 && (s[0] >> 4) <= 7 &&
                   (s[0] * 256u + s[1]) % 31 == 0 && !(s[1] & 0x20)) {
            Inflated r = checker.check(s + 2, size - p - 2, options.max_u_size, true);
            if (r.ok && size - p - 2 - r.length >= 4 && be32(s + 2 + r.length) == r.adler) {
                st = {p + 2, r.length, r.u_size, p, Wrapper::Zlib, "", 8u + (s[0] >> 4)};
                ok = true;
            }
        }
        if (ok && st.length >= options.min_length) {
            found.push_back(st);
            p = st.offset + st.length;
        } else {
            ++p;
        }
    }
    return found;
}

} // namespace ota::deflate
