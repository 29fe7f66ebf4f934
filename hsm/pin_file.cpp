#include "hsm/pin_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "hsm/hsm_error.h"

namespace best::hsm {

namespace {

tl::unexpected<Error> pinError(const std::string& path, const std::string& what) {
    return makeError(HsmErrc::pin_file, "PIN file '" + path + "': " + what);
}

}  // namespace

Result<SecureBuffer> readPinFile(const std::string& path) {
    if (path.empty()) {
        return makeError(HsmErrc::pin_file,
                         "no PIN file configured: set hsm.pin_file (or pin-source= in the "
                         "pkcs11: URI) to a file readable only by the service");
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.isValid()) {
        return pinError(path, std::string(std::strerror(errno)) +
                                  ": create it (mode 0600, owned by the service user) or fix "
                                  "hsm.pin_file");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return pinError(path, "not a regular file");
    if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0)
        return pinError(path, "readable or writable by other users: chmod o-rw (0600 or 0640)");
    SecureBuffer buf(kMaxPinLength + 3, true);
    std::size_t n = 0;
    while (n < buf.size()) {
        const ssize_t got = ::read(fd.get(), buf.data() + n, buf.size() - n);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return pinError(path, std::string("read failed: ") + std::strerror(errno));
        }
        if (got == 0)
            break;
        n += static_cast<std::size_t>(got);
    }
    if (n > 0 && buf.data()[n - 1] == '\n')
        --n;
    if (n > 0 && buf.data()[n - 1] == '\r')
        --n;
    if (n == 0)
        return pinError(path, "empty: write the token's user PIN into it");
    if (n > kMaxPinLength)
        return pinError(path, "longer than 255 octets: not a PIN");
    SecureBuffer pin(ByteView(buf.data(), n), true);
    return pin;
}

}  // namespace best::hsm
