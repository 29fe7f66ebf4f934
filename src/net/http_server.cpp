#include "net/http_server.h"

#include <vector>

#include "common/log.h"

namespace best::net {

namespace {

constexpr const char* kLog = "http";

bool isTokenChar(char c) {
    // RFC 9110 tchar.
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

HttpParseResult bad(int status, std::string reason) {
    HttpParseResult r;
    r.state = HttpParseState::bad;
    r.status = status;
    r.reason = std::move(reason);
    return r;
}

}  // namespace

std::string_view httpReason(int status) {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 431:
            return "Request Header Fields Too Large";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Error";
    }
}

HttpParseResult parseHttpRequest(std::string_view buffer, std::size_t maxHead) {
    // Leading empty lines are tolerated (RFC 9112 2.2); then the request line.
    std::size_t start = 0;
    while (start + 1 < buffer.size() && buffer[start] == '\r' && buffer[start + 1] == '\n')
        start += 2;
    const std::size_t end = buffer.find("\r\n\r\n", start);
    if (end == std::string_view::npos) {
        if (buffer.size() > maxHead)
            return bad(431, "request head larger than " + std::to_string(maxHead) + " octets");
        // A bare LF or a NUL is never valid in what we have so far.
        for (std::size_t i = start; i < buffer.size(); ++i) {
            if (buffer[i] == '\0')
                return bad(400, "NUL in the request head");
            if (buffer[i] == '\n' && (i == 0 || buffer[i - 1] != '\r'))
                return bad(400, "bare LF in the request head");
        }
        return {};
    }
    if (end + 4 > maxHead)
        return bad(431, "request head larger than " + std::to_string(maxHead) + " octets");
    const std::string_view head = buffer.substr(start, end - start);
    for (std::size_t i = 0; i < head.size(); ++i) {
        const char c = head[i];
        if (c == '\0')
            return bad(400, "NUL in the request head");
        if (c == '\n' && (i == 0 || head[i - 1] != '\r'))
            return bad(400, "bare LF in the request head");
        if (c == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n'))
            return bad(400, "bare CR in the request head");
    }
    const std::size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    // method SP target SP version, exactly.
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
        line.find(' ', sp2 + 1) != std::string_view::npos)
        return bad(400, "malformed request line");
    HttpParseResult r;
    r.request.method = std::string(line.substr(0, sp1));
    std::string target(line.substr(sp1 + 1, sp2 - sp1 - 1));
    r.request.version = std::string(line.substr(sp2 + 1));
    if (r.request.method.empty())
        return bad(400, "empty method");
    for (char c : r.request.method)
        if (!isTokenChar(c))
            return bad(400, "malformed method");
    if (target.empty() || target[0] != '/')
        return bad(400, "the target must be an absolute path");
    for (char c : target)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            return bad(400, "malformed target");
    if (r.request.version.size() != 8 || r.request.version.compare(0, 5, "HTTP/") != 0 ||
        r.request.version[6] != '.' || r.request.version[5] < '0' || r.request.version[5] > '9' ||
        r.request.version[7] < '0' || r.request.version[7] > '9')
        return bad(400, "malformed HTTP version");
    if (r.request.version != "HTTP/1.1" && r.request.version != "HTTP/1.0")
        return bad(505, "only HTTP/1.0 and HTTP/1.1 are served");
    // Header fields: name ":" value; no obsolete line folding; no request body.
    bool host = false;
    std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
        std::size_t next = head.find("\r\n", pos);
        if (next == std::string_view::npos)
            next = head.size();
        const std::string_view field = head.substr(pos, next - pos);
        pos = next + 2;
        const std::size_t colon = field.find(':');
        if (colon == 0 || colon == std::string_view::npos)
            return bad(400, "malformed header field");
        std::string name(field.substr(0, colon));
        for (char& c : name) {
            if (!isTokenChar(c))
                return bad(400, "malformed header field name");
            if (c >= 'A' && c <= 'Z')
                c = static_cast<char>(c - 'A' + 'a');
        }
        std::string_view value = field.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
            value.remove_prefix(1);
        if (name == "host")
            host = true;
        if (name == "transfer-encoding")
            return bad(400, "a request body is not accepted");
        if (name == "content-length" && value != "0")
            return bad(400, "a request body is not accepted");
    }
    if (r.request.version == "HTTP/1.1" && !host)
        return bad(400, "HTTP/1.1 request without Host");
    if (const std::size_t q = target.find('?'); q != std::string::npos)
        target.resize(q);
    r.request.target = std::move(target);
    r.state = HttpParseState::complete;
    return r;
}

std::string httpResponse(int status, std::string_view contentType, std::string_view body,
                         std::string_view extraHeaders) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(httpReason(status)) +
                    "\r\nContent-Type: " + std::string(contentType) +
                    "\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\nConnection: close\r\n";
    r += extraHeaders;
    r += "\r\n";
    r += body;
    return r;
}

HttpServer::HttpServer(Loop& loop, Limits limits) : loop_(loop), limits_(limits) {}

HttpServer::~HttpServer() {
    close();
}

Result<void> HttpServer::listen(const SocketAddress& addr) {
    server_ = loop_.make<StreamServer>(false);
    if (auto r = server_->listenTcp(addr, [this](StreamConnection& c) { onAccept(c); }); !r)
        return r;
    timer_ = loop_.make<Timer>();
    timer_->start(500, 500, [this]() { sweep(); });
    return {};
}

Result<SocketAddress> HttpServer::localAddress() const {
    if (!server_)
        return makeError(NetErrc::address, "not listening");
    return server_->localAddress();
}

void HttpServer::close() {
    server_.reset();
    timer_.reset();
    // Closing runs each connection's onClosed later, from the loop: detach first.
    std::vector<StreamConnection*> all;
    for (auto& [c, _] : conns_)
        all.push_back(c);
    conns_.clear();
    for (auto* c : all) {
        c->setOnClosed(nullptr);
        c->close();
    }
}

void HttpServer::onAccept(StreamConnection& c) {
    if (conns_.size() >= limits_.maxConnections) {
        c.close();
        return;
    }
    conns_.emplace(&c, Conn{});
    StreamConnection* cp = &c;
    c.setOnClosed([this, cp]() { conns_.erase(cp); });
    auto r = c.startRead([this](StreamConnection& s, ByteView d) { onData(s, d); },
                         [](StreamConnection&) {});
    if (!r)
        c.close();
}

void HttpServer::answer(StreamConnection& c, const std::string& response) {
    auto it = conns_.find(&c);
    if (it == conns_.end() || it->second.answered)
        return;
    it->second.answered = true;
    c.stopRead();
    c.write(response);
    c.closeAfterWrites();
}

void HttpServer::onData(StreamConnection& c, ByteView data) {
    auto it = conns_.find(&c);
    if (it == conns_.end() || it->second.answered)
        return;
    Conn& conn = it->second;
    // Keep at most one octet more than the limit: enough to know it is exceeded.
    const std::size_t room =
        limits_.maxHead + 1 - std::min(conn.buffer.size(), limits_.maxHead + 1);
    conn.buffer.append(reinterpret_cast<const char*>(data.data()), std::min(room, data.size()));
    auto p = parseHttpRequest(conn.buffer, limits_.maxHead);
    if (p.state == HttpParseState::incomplete)
        return;
    ++requests_;
    if (p.state == HttpParseState::bad) {
        log::debug(kLog, "request refused: " + p.reason);
        answer(c, httpResponse(p.status, "text/plain; charset=utf-8", p.reason + "\n"));
        return;
    }
    if (p.request.method != "GET") {
        answer(c, httpResponse(405, "text/plain; charset=utf-8", "only GET is served\n",
                               "Allow: GET\r\n"));
        return;
    }
    auto page = pages_.find(p.request.target);
    if (page == pages_.end()) {
        answer(c, httpResponse(404, "text/plain; charset=utf-8", "not found\n"));
        return;
    }
    answer(c, httpResponse(200, page->second.contentType, page->second.render()));
}

void HttpServer::sweep() {
    const std::uint64_t now = loop_.nowMs();
    std::vector<StreamConnection*> late;
    for (auto& [c, conn] : conns_)
        if (now - c->acceptedMs() >= limits_.timeoutMs)
            late.push_back(c);
    for (auto* c : late) {
        auto it = conns_.find(c);
        if (!it->second.answered) {
            answer(*c, httpResponse(408, "text/plain; charset=utf-8", "request timeout\n"));
        } else {
            c->close();
        }
    }
}

}  // namespace best::net
