// ota-publish: the fleet backend's tool. Makes keys, bundles (full and delta) and a signed TUF
// repository of plain files that any static HTTP server or CDN can serve.
#include "agent/bundle/header.h"
#include "agent/bundle/reader.h"
#include "agent/bundle/writer.h"
#include "agent/common/crypto.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"
#include "agent/delta/delta_bundle.h"
#include "manifests/publisher/director_cli.h"
#include "manifests/publisher/repository.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <iostream>
#include <map>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

using namespace ota;

namespace {

const char* kUsage = R"(usage: ota-publish COMMAND [OPTIONS]

  init --repo DIR [--key-type ecdsa|rsa|ed25519] [--no-consistent-snapshot] [--expires-days N]
        create a repository: one signing key per TUF role (keys/), signed metadata (metadata/);
        --key-type is the type of every key it makes from then on (default ecdsa: ECDSA P-256;
        rsa: RSA-PSS 3072; ed25519: Ed25519, the default of python-tuf and go-tuf)
  bundle --image IMAGE --out BUNDLE [--chunk-size BYTES] [--kind firmware|model] [--format 1|2|3]
        (--chunk-size: image bytes per operation, one zstd frame each; default 2 MiB)
        build a full-image bundle; prints its identity as JSON. Format 3 (default) is a compact
        binary header with the SHA-256 of each 1 MiB chunk of the image; format 2 the same in
        JSON (for agents older than format 3); format 1 only its whole-image hash (older still)
  delta OLD NEW BUNDLE [--format 2|3] [--no-zstd-frames]
        build a delta bundle that turns image OLD into image NEW (format 3, compact, by default;
        format 2 for agents older than format 3: also without the flagged Diff blob layout).
        Zstd frames in the images (squashfs zstd blocks) are diffed decompressed and made again
        on the ECU, which needs the agent's libzstd to be this one's version; --no-zstd-frames
        (and format 2) diff them as they are
  add --repo DIR --bundle BUNDLE --hardware-id HW --version N [--component NAME]
      [--kind firmware|model] [--name TARGET_PATH] [--delta-from-version V]
        list a bundle as a signed target (copies it to targets/) and publish new metadata
  release --repo DIR --image NEW --version N --hardware-id HW [--component NAME]
      [--from OLD_IMAGE:OLD_VERSION ...]
        build the full bundle and a delta from each listed old image, add them all, publish
  model-bundle --dir MODEL_DIR --out BUNDLE [--chunk-size BYTES]
        build a model bundle (payload_kind "model") from a folder: its regular files, sorted by
        path, concatenated into the image; the header lists each file (path, offset, length, mode)
  model-delta --old-dir OLD_DIR --new-dir NEW_DIR --out BUNDLE
        build a model delta: the new folder's image encoded against the old folder's image
  add-release --repo DIR --hardware-id HW --id RELEASE_ID --version N --component NAME:VERSION ...
        publish a release target: the component versions (firmware and models) that must be
        installed together (their bundles must be added with `add`)
  timestamp --repo DIR
        sign a fresh timestamp (run periodically: timestamps expire quickly)
  rotate --repo DIR --role root|timestamp|snapshot|targets [--key-type ecdsa|rsa|ed25519]
        replace a role's key (by one of --key-type, default the repository's); root N+1 is
        signed by the old and the new root keys
  keygen --key-type ecdsa|rsa|ed25519 --out PREFIX
        write PREFIX.key (private, PEM) and PREFIX.pub (public, PEM SubjectPublicKeyInfo)
  director init|add-ecu|assign|unassign|manifest ...
        the Uptane director repository of a vehicle (ota-publish director --help)
)";

struct Options {
    std::map<std::string, std::vector<std::string>> values;
    std::vector<std::string> positional;
    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = values.find(k);
        return it == values.end() ? def : it->second.back();
    }
    std::string need(const std::string& k) const {
        if (!has(k)) throw Error(ErrorKind::Config, "missing --" + k);
        return get(k);
    }
};

Options parse(int argc, char** argv, int start) {
    Options o;
    for (int i = start; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            std::string key = s.substr(2);
            if (key == "no-consistent-snapshot" || key == "no-zstd-frames") {
                o.values[key].push_back("1");
            } else {
                if (i + 1 >= argc) throw Error(ErrorKind::Config, "--" + key + " needs a value");
                o.values[key].push_back(argv[++i]);
            }
        } else {
            o.positional.push_back(s);
        }
    }
    return o;
}

std::string scheme_of(const std::string& s) {
    if (s == "ecdsa" || s == kSchemeEcdsaP256) return kSchemeEcdsaP256;
    if (s == "rsa" || s == kSchemeRsaPss) return kSchemeRsaPss;
    if (s == "ed25519") return kSchemeEd25519;
    throw Error(ErrorKind::Config, "unknown key type " + s + " (ecdsa, rsa or ed25519)");
}

// --key-type (or its older name --scheme); `fallback` when neither is given.
std::string key_scheme(const Options& o, const std::string& fallback) {
    if (o.has("key-type") && o.has("scheme"))
        throw Error(ErrorKind::Config, "--key-type and --scheme name the same thing: give one");
    if (o.has("key-type")) return scheme_of(o.get("key-type"));
    if (o.has("scheme")) return scheme_of(o.get("scheme"));
    return fallback.empty() ? fallback : scheme_of(fallback);
}

uint64_t to_u64(const std::string& s, const std::string& what) {
    try {
        size_t pos = 0;
        unsigned long long v = std::stoull(s, &pos);
        if (pos != s.size()) throw std::invalid_argument(s);
        return v;
    } catch (const std::exception&) {
        throw Error(ErrorKind::Config, what + " must be a number: " + s);
    }
}

Json info_json(const bundle::BundleInfo& info) {
    Json j{
        {"bundle_length", info.bundle_length},        {"bundle_sha256", info.bundle_sha256},
        {"header_length", info.header_length},        {"header_sha256", info.header_sha256},
        {"image_length", info.header.target_size},    {"image_sha256", info.header.target_sha256},
        {"operations", info.header.operations.size()}};
    if (info.header.source)
        j["source"] =
            Json{{"length", info.header.source->size}, {"sha256", info.header.source->sha256}};
    return j;
}

// Adds one bundle file as a target with the custom fields the agent needs.
std::string add_bundle(publish::Repository& repo, const std::string& bundle_path,
                       const std::string& hardware_id, uint64_t version,
                       const std::string& component, const std::string& kind,
                       std::string target_path, std::optional<uint64_t> delta_from_version) {
    bundle::BundleFile bf = bundle::BundleFile::open_self_verified(bundle_path);
    const bundle::Header& h = bf.header();
    Json custom{{"hardware_id", hardware_id},
                {"component", component},
                {"kind", kind},
                {"version", version},
                {"image", Json{{"length", h.target_size}, {"sha256", h.target_sha256}}},
                {"bundle", Json{{"header_sha256", bf.header_sha256()},
                                {"header_length", bf.header_length()}}}};
    if (h.source) {
        if (!delta_from_version)
            throw Error(ErrorKind::Config, "a delta bundle needs --delta-from-version");
        custom["delta_from"] = Json{{"version", *delta_from_version}, {"sha256", h.source->sha256}};
    }
    if (target_path.empty())
        target_path =
            hardware_id + "/" + component + "-" + std::to_string(version) +
            (h.source ? ".from-" + std::to_string(*delta_from_version) + ".delta" : ".full") +
            ".bundle";
    repo.add_target(target_path, bundle_path, custom);
    return target_path;
}

// The regular files below `dir`, sorted by relative path; symlinks and specials are refused.
void list_model_files(const std::string& dir, const std::string& rel,
                      std::vector<bundle::FileEntry>& out) {
    DIR* d = ::opendir(join_path(dir, rel).c_str());
    if (!d) throw Error(ErrorKind::Io, "cannot open folder " + join_path(dir, rel));
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        const std::string r = rel.empty() ? n : rel + "/" + n;
        struct stat st;
        if (::lstat(join_path(dir, r).c_str(), &st) != 0)
            throw Error(ErrorKind::Io, "cannot stat " + join_path(dir, r));
        if (S_ISDIR(st.st_mode))
            list_model_files(dir, r, out);
        else if (S_ISREG(st.st_mode))
            out.push_back(bundle::FileEntry{r, 0, static_cast<uint64_t>(st.st_size),
                                            static_cast<uint32_t>(st.st_mode & 0777)});
        else
            throw Error(ErrorKind::Config, join_path(dir, r) + " is not a regular file or folder");
    }
}

// Concatenates a model folder's files into `image`; returns the files list with offsets.
std::vector<bundle::FileEntry> model_image(const std::string& dir, const std::string& image) {
    std::vector<bundle::FileEntry> files;
    list_model_files(dir, "", files);
    if (files.empty()) throw Error(ErrorKind::Config, dir + " holds no files");
    UniqueFd out = open_or_throw(image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    uint64_t offset = 0;
    std::vector<char> buf(1 << 20);
    for (auto& f : files) {
        f.offset = offset;
        UniqueFd in = open_or_throw(join_path(dir, f.path), O_RDONLY | O_CLOEXEC);
        uint64_t left = f.length;
        while (left > 0) {
            size_t n =
                read_full(in.get(), buf.data(), std::min<uint64_t>(left, buf.size()), f.path);
            if (n == 0) throw Error(ErrorKind::Io, f.path + " shrank while being read");
            write_all(out.get(), buf.data(), n, image);
            left -= n;
        }
        offset += f.length;
    }
    fsync_or_throw(out.get(), image);
    return files;
}

// Rewrites a bundle's header as a model bundle (the delta encoder writes firmware headers); the
// blob area is unchanged because data offsets are relative to it.
bundle::BundleInfo retag_as_model(const std::string& path,
                                  const std::vector<bundle::FileEntry>& files) {
    bundle::BundleFile bf = bundle::BundleFile::open_self_verified(path);
    bundle::Header h = bf.header();
    h.payload_kind = "model";
    h.files = files;
    bundle::validate_header(h);
    const std::string header = bundle::header_bytes(h);
    const std::string tmp = path + ".retag.tmp";
    {
        UniqueFd out = open_or_throw(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        uint8_t pre[bundle::kPreambleSize];
        std::memcpy(pre, bundle::kMagic, 8);
        uint64_t len = header.size();
        for (int i = 0; i < 8; ++i)
            pre[8 + i] = static_cast<uint8_t>(len >> (8 * i));
        write_all(out.get(), pre, sizeof pre, tmp);
        write_all(out.get(), header.data(), header.size(), tmp);
        UniqueFd in = open_or_throw(path, O_RDONLY | O_CLOEXEC);
        std::vector<char> buf(1 << 20);
        uint64_t pos = bf.blob_area_offset();
        while (true) {
            size_t want = buf.size();
            ssize_t n = ::pread(in.get(), buf.data(), want, static_cast<off_t>(pos));
            if (n < 0) throw Error(ErrorKind::Io, "cannot read " + path);
            if (n == 0) break;
            write_all(out.get(), buf.data(), static_cast<size_t>(n), tmp);
            pos += static_cast<uint64_t>(n);
        }
        fsync_or_throw(out.get(), tmp);
    }
    rename_durable(tmp, path);
    bundle::BundleFile check = bundle::BundleFile::open_self_verified(path);
    return bundle::BundleInfo{file_size(path), file_sha256_hex(path), check.header_length(),
                              check.header_sha256(), check.header()};
}

int run(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    const std::string cmd = argv[1];
    if (cmd == "director") return publish::run_director(argc, argv);
    Options o = parse(argc, argv, 2);

    if (cmd == "init") {
        publish::RepositoryOptions ro;
        ro.scheme = key_scheme(o, "ecdsa");
        ro.consistent_snapshot = !o.has("no-consistent-snapshot");
        if (o.has("expires-days"))
            ro.expires_days = static_cast<int64_t>(to_u64(o.get("expires-days"), "--expires-days"));
        auto repo = publish::Repository::create(o.need("repo"), ro);
        std::printf("created repository %s (keys in %s/keys: keep root keys offline)\n",
                    repo.dir().c_str(), repo.dir().c_str());
        return 0;
    }
    if (cmd == "bundle") {
        bundle::FullBundleOptions bo;
        if (o.has("chunk-size")) bo.chunk_size = to_u64(o.get("chunk-size"), "--chunk-size");
        bo.payload_kind = o.get("kind", "firmware");
        const std::string format = o.get("format", "3");
        if (format != "1" && format != "2" && format != "3")
            throw Error(ErrorKind::Config, "--format is 1, 2 or 3");
        bo.target_chunk_hashes = format != "1";
        bo.compact_header = format == "3";
        auto info = bundle::build_full_bundle(o.need("image"), o.need("out"), bo);
        std::cout << info_json(info).dump(1) << std::endl;
        return 0;
    }
    if (cmd == "delta") {
        if (o.positional.size() != 3)
            throw Error(ErrorKind::Config, "usage: ota-publish delta OLD NEW BUNDLE");
        delta::DeltaOptions dopt;
        const std::string format = o.get("format", "3");
        if (format != "2" && format != "3") throw Error(ErrorKind::Config, "--format is 2 or 3");
        dopt.compact_header = format == "3";
        // Agents older than format 3 are older than the flagged Diff blob layout too.
        dopt.flagged_diff = format == "3";
        // Zstd frames are made again with this libzstd: only for agents with the same version.
        dopt.zstd_frames = format == "3" && !o.has("no-zstd-frames");
        auto info =
            delta::build_delta_bundle(o.positional[0], o.positional[1], o.positional[2], dopt);
        std::cout << info_json(info).dump(1) << std::endl;
        return 0;
    }
    if (cmd == "add") {
        auto repo = publish::Repository::open(o.need("repo"));
        std::optional<uint64_t> from;
        if (o.has("delta-from-version"))
            from = to_u64(o.get("delta-from-version"), "--delta-from-version");
        std::string path = add_bundle(
            repo, o.need("bundle"), o.need("hardware-id"), to_u64(o.need("version"), "--version"),
            o.get("component", "rootfs"), o.get("kind", "firmware"), o.get("name"), from);
        repo.publish();
        std::printf(
            "published %s (targets version %llu)\n", path.c_str(),
            static_cast<unsigned long long>(repo.role("targets").body["version"].get<uint64_t>()));
        return 0;
    }
    if (cmd == "release") {
        auto repo = publish::Repository::open(o.need("repo"));
        const std::string image = o.need("image"), hw = o.need("hardware-id");
        const std::string component = o.get("component", "rootfs");
        const uint64_t version = to_u64(o.need("version"), "--version");
        const std::string work = repo.dir() + "/build";
        make_directories(work);
        std::string full = work + "/" + component + "-" + std::to_string(version) + ".full.bundle";
        bundle::build_full_bundle(image, full);
        std::printf(
            "published %s\n",
            add_bundle(repo, full, hw, version, component, "firmware", "", std::nullopt).c_str());
        auto froms = o.values.count("from") ? o.values.at("from") : std::vector<std::string>{};
        for (const auto& f : froms) {
            auto colon = f.rfind(':');
            if (colon == std::string::npos)
                throw Error(ErrorKind::Config, "--from wants OLD_IMAGE:OLD_VERSION, got " + f);
            uint64_t old_version = to_u64(f.substr(colon + 1), "--from version");
            std::string out = work + "/" + component + "-" + std::to_string(version) + ".from-" +
                              std::to_string(old_version) + ".delta.bundle";
            delta::build_delta_bundle(f.substr(0, colon), image, out);
            std::printf(
                "published %s\n",
                add_bundle(repo, out, hw, version, component, "firmware", "", old_version).c_str());
        }
        repo.publish();
        return 0;
    }
    if (cmd == "model-bundle") {
        const std::string out = o.need("out");
        const std::string image = out + ".image.tmp";
        bundle::FullBundleOptions bo;
        if (o.has("chunk-size")) bo.chunk_size = to_u64(o.get("chunk-size"), "--chunk-size");
        bo.payload_kind = "model";
        bo.files = model_image(o.need("dir"), image);
        bundle::BundleInfo info;
        try {
            info = bundle::build_full_bundle(image, out, bo);
        } catch (...) {
            ::unlink(image.c_str());
            throw;
        }
        ::unlink(image.c_str());
        std::cout << info_json(info).dump(1) << std::endl;
        return 0;
    }
    if (cmd == "model-delta") {
        const std::string out = o.need("out");
        const std::string old_image = out + ".old.tmp", new_image = out + ".new.tmp";
        auto cleanup = [&] {
            ::unlink(old_image.c_str());
            ::unlink(new_image.c_str());
        };
        bundle::BundleInfo info;
        try {
            model_image(o.need("old-dir"), old_image);
            auto files = model_image(o.need("new-dir"), new_image);
            delta::build_delta_bundle(old_image, new_image, out);
            info = retag_as_model(out, files);
        } catch (...) {
            cleanup();
            throw;
        }
        cleanup();
        std::cout << info_json(info).dump(1) << std::endl;
        return 0;
    }
    if (cmd == "add-release") {
        auto repo = publish::Repository::open(o.need("repo"));
        const std::string hw = o.need("hardware-id"), id = o.need("id");
        const uint64_t version = to_u64(o.need("version"), "--version");
        Json components = Json::array();
        if (!o.values.count("component"))
            throw Error(ErrorKind::Config,
                        "add-release needs at least one --component NAME:VERSION");
        for (const auto& c : o.values.at("component")) {
            auto colon = c.rfind(':');
            if (colon == std::string::npos || colon == 0)
                throw Error(ErrorKind::Config, "--component wants NAME:VERSION, got " + c);
            components.push_back(
                Json{{"component", c.substr(0, colon)},
                     {"version", to_u64(c.substr(colon + 1), "--component version")}});
        }
        Json release{{"id", id}, {"components", components}};
        // The target file is the release description itself; the agent reads the signed custom
        // copy, so it never has to download it.
        const std::string work = repo.dir() + "/build";
        make_directories(work);
        const std::string file = work + "/release-" + std::to_string(version) + ".json";
        write_file_atomic(
            file,
            canonical_json(Json{{"hardware_id", hw}, {"release", release}, {"version", version}}));
        const std::string path = hw + "/release-" + std::to_string(version) + ".json";
        repo.add_target(path, file,
                        Json{{"hardware_id", hw},
                             {"kind", "release"},
                             {"version", version},
                             {"release", release}});
        repo.publish();
        std::printf("published %s (release %s: %zu components)\n", path.c_str(), id.c_str(),
                    components.size());
        return 0;
    }
    if (cmd == "timestamp") {
        auto repo = publish::Repository::open(o.need("repo"));
        repo.refresh_timestamp();
        return 0;
    }
    if (cmd == "rotate") {
        auto repo = publish::Repository::open(o.need("repo"));
        repo.rotate_keys(o.need("role"), key_scheme(o, ""));
        std::printf(
            "rotated the %s key; root is now version %llu\n", o.get("role").c_str(),
            static_cast<unsigned long long>(repo.role("root").body["version"].get<uint64_t>()));
        return 0;
    }
    if (cmd == "keygen") {
        SigningKey k = SigningKey::generate(key_scheme(o, "ecdsa"));
        const std::string prefix = o.need("out");
        write_file_atomic(prefix + ".key", k.private_pem());
        write_file_atomic(prefix + ".pub", k.public_pem());
        std::printf("wrote %s.key and %s.pub\n", prefix.c_str(), prefix.c_str());
        return 0;
    }
    throw Error(ErrorKind::Config, "unknown command " + cmd + " (see --help)");
}

} // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fprintf(stderr, "ota-publish: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ota-publish: %s\n", e.what());
        return 1;
    }
}
