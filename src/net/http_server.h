// A GET-only HTTP/1.1 responder on the daemon's loop (the metrics page): no library, no threads.
// One request per connection, bounded in size and time; the connection is closed after the
// response. Paths not registered get 404, methods other than GET 405, malformed requests 400,
// oversized ones 431, versions other than HTTP/1.0 and HTTP/1.1 505.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/loop.h"

namespace best::net {

struct HttpRequest {
    std::string method;
    std::string target;  // the path, without a query string
    std::string version;
};

enum class HttpParseState { incomplete, complete, bad };

struct HttpParseResult {
    HttpParseState state = HttpParseState::incomplete;
    HttpRequest request;
    int status = 0;      // for bad: the status to answer
    std::string reason;  // for bad: why (logged, and the response body)
};

// Parses the request head in `buffer` (everything received so far). Complete once the empty
// line ending the head is there. A head longer than maxHead is bad (431).
HttpParseResult parseHttpRequest(std::string_view buffer, std::size_t maxHead);

// A complete response with Content-Length and Connection: close.
std::string httpResponse(int status, std::string_view contentType, std::string_view body,
                         std::string_view extraHeaders = {});
std::string_view httpReason(int status);

class HttpServer {
public:
    // The page's content type and body, produced when it is requested.
    struct Page {
        std::string contentType;
        std::function<std::string()> render;
    };
    struct Limits {
        std::size_t maxHead = 8192;
        std::uint64_t timeoutMs = 5000;  // a connection is closed after this, answered or not
        std::size_t maxConnections = 64;
    };

    HttpServer(Loop& loop, Limits limits);
    ~HttpServer();
    HttpServer(const HttpServer&) = delete;
    HttpServer& operator=(const HttpServer&) = delete;

    void addPage(const std::string& path, Page page) { pages_[path] = std::move(page); }
    Result<void> listen(const SocketAddress& addr);
    Result<SocketAddress> localAddress() const;
    // Stops accepting and closes every connection.
    void close();
    std::uint64_t requests() const noexcept { return requests_; }

private:
    struct Conn {
        std::string buffer;
        bool answered = false;
    };
    void onAccept(StreamConnection& c);
    void onData(StreamConnection& c, ByteView data);
    void answer(StreamConnection& c, const std::string& response);
    void sweep();

    Loop& loop_;
    Limits limits_;
    HandlePtr<StreamServer> server_;
    HandlePtr<Timer> timer_;
    std::map<StreamConnection*, Conn> conns_;
    std::map<std::string, Page> pages_;
    std::uint64_t requests_ = 0;
};

}  // namespace best::net
