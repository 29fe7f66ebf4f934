// Helper for the kill -9 test: opens the store as a daemon would and hands out SQNs in a loop.
// Each SQN is appended to a log file with write + fdatasync BEFORE it counts as released (as a
// vector leaves the HSE only after its SQN is durable and logged here), so after any kill the
// log holds every SQN that ever left this process.
//
// usage: sqn_vector_writer STORE LOG IMSI BATCH [COUNT]
//   COUNT: stop after that many SQNs and exit 0 (default: run until killed)
// Log lines: "sqn SEQ SQN-HEX" per released SQN (the caller writes a line between runs).
// Prints "ready" on stdout once the store is open, so a caller can time a kill from there.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/hex.h"
#include "store/store.h"

namespace {

bool appendDurably(int fd, const std::string& line) {
    // One write() per line: a kill cannot split it (regular file, small write).
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
        return false;
    return ::fdatasync(fd) == 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 5 && argc != 6) {
        std::fprintf(stderr, "usage: %s STORE LOG IMSI BATCH [COUNT]\n", argv[0]);
        return 64;
    }
    const std::string storePath = argv[1];
    const int logFd = ::open(argv[2], O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (logFd < 0) {
        std::perror("open log");
        return 1;
    }
    const std::string imsi = argv[3];
    best::store::StoreOptions options;  // daemon mode, default group commit
    options.sqn.batchSize = static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10));
    const long count = argc == 6 ? std::strtol(argv[5], nullptr, 10) : -1;

    auto store = best::store::Store::open(storePath, options);
    if (!store) {
        std::fprintf(stderr, "%s\n", store.error().describe().c_str());
        return 2;
    }
    std::fputs("ready\n", stdout);
    std::fflush(stdout);
    for (long n = 0; count < 0 || n < count; ++n) {
        auto g = (*store)->sqn().allocate(std::string_view(imsi));
        if (!g) {
            std::fprintf(stderr, "%s\n", g.error().describe().c_str());
            return 3;
        }
        const std::string line =
            "sqn " + std::to_string(g->seq) + " " + best::toHex(best::ByteView(g->sqn)) + "\n";
        if (!appendDurably(logFd, line)) {
            std::perror("write log");
            return 1;
        }
        // Released: from here the vector could have left the HSE.
    }
    ::close(logFd);
    return 0;
}
