// A raw HTTP exchange over loopback TCP (metrics pages: tests/unit/net and tests/integration):
// sends the request in parts, with a pause between them, and reads until the server closes or
// is silent for 5 s. No parsing: the tests compare the bytes the server wrote.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace best::test {

// The whole response to `parts` sent to 127.0.0.1:`port`, or "connect failed".
inline std::string httpExchange(std::uint16_t port, const std::vector<std::string>& parts,
                                int pauseMs = 0) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return "connect failed";
    }
    for (const auto& p : parts) {
        (void)::send(fd, p.data(), p.size(), MSG_NOSIGNAL);
        if (pauseMs > 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(pauseMs));
    }
    std::string out;
    char buf[8192];
    for (;;) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 5000) <= 0)
            break;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

// One request sent whole.
inline std::string httpExchange(std::uint16_t port, const std::string& request) {
    return httpExchange(port, std::vector<std::string>{request});
}

}  // namespace best::test
