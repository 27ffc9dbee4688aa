#include "agent/bundle/apply_file.h"

#include "agent/bundle/installer.h"
#include "agent/common/error.h"
#include "agent/common/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ota::bundle {

int apply_bundle_file(const std::string& bundle_path, const std::string* source_path,
                      const std::string& output, std::string* error) {
    try {
        BundleFile bundle = BundleFile::open_self_verified(bundle_path);
        const uint64_t size = bundle.header().target_size;
        std::unique_ptr<hal::BlockDevice> source;
        if (source_path) source = hal::open_block_device(*source_path, false);
        InstallJournal journal(output + ".journal");
        {
            // Sized up front so the installer's size check passes; an existing file is kept (its
            // journal may let us resume) but cut to the exact image size.
            UniqueFd fd = open_or_throw(output, O_WRONLY | O_CREAT, 0644);
            struct stat st {};
            if (::fstat(fd.get(), &st) != 0) throw Error(ErrorKind::Io, "cannot stat " + output);
            // A block device keeps its size (the installer checks it is large enough).
            if (S_ISREG(st.st_mode) && ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0)
                throw Error(ErrorKind::Io, "cannot resize " + output);
        }
        auto target = hal::open_block_device(output, true);
        InstallOptions options;
        install_bundle(bundle, source.get(), *target, journal, options);
        target.reset();
        struct stat st {};
        if (::stat(output.c_str(), &st) == 0 && S_ISREG(st.st_mode) && file_size(output) != size)
            throw Error(ErrorKind::Io, output + " changed size during installation");
        journal.clear();
        return 0;
    } catch (const std::exception& e) {
        if (error) *error = e.what();
        return 1;
    }
}

} // namespace ota::bundle
