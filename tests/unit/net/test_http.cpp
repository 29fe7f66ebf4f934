// The metrics page's HTTP/1.1 responder: the request-head parser on malformed input (each case
// with its exact status), and the server on a real loop over loopback TCP.
#include <thread>

#include <gtest/gtest.h>

#include "net/http_server.h"
#include "tests/support/http_exchange.h"

namespace best::net {
namespace {

constexpr std::size_t kMax = 256;

HttpParseResult parse(std::string_view s) {
    return parseHttpRequest(s, kMax);
}

TEST(HttpParse, CompleteGet) {
    auto r = parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n");
    ASSERT_EQ(r.state, HttpParseState::complete) << r.reason;
    EXPECT_EQ(r.request.method, "GET");
    EXPECT_EQ(r.request.target, "/metrics");
    EXPECT_EQ(r.request.version, "HTTP/1.1");
    // HTTP/1.0 needs no Host; leading empty lines are skipped.
    r = parse("\r\nGET / HTTP/1.0\r\n\r\n");
    ASSERT_EQ(r.state, HttpParseState::complete) << r.reason;
    EXPECT_EQ(r.request.target, "/");
}

TEST(HttpParse, IncompleteUntilTheEmptyLine) {
    EXPECT_EQ(parse("").state, HttpParseState::incomplete);
    EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n").state, HttpParseState::incomplete);
    EXPECT_EQ(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n\r").state, HttpParseState::incomplete);
}

struct Bad {
    const char* name;
    std::string request;
    int status;
    const char* reason;
};

TEST(HttpParse, MalformedRequestsGetTheirStatus) {
    const std::vector<Bad> cases = {
        {"no version", "GET /metrics\r\n\r\n", 400, "malformed request line"},
        {"double space", "GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400,
         "malformed request line"},
        {"extra word", "GET /m HTTP/1.1 x\r\nHost: a\r\n\r\n", 400, "malformed request line"},
        {"bad method", "G(T /m HTTP/1.1\r\nHost: a\r\n\r\n", 400, "malformed method"},
        {"relative target", "GET metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400,
         "the target must be an absolute path"},
        {"absolute-form", "GET http://a/m HTTP/1.1\r\nHost: a\r\n\r\n", 400,
         "the target must be an absolute path"},
        {"control in target", std::string("GET /m\x01 HTTP/1.1\r\nHost: a\r\n\r\n"), 400,
         "malformed target"},
        {"bad version", "GET /m HTTP/x.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version"},
        {"lowercase version", "GET /m http/1.1\r\nHost: a\r\n\r\n", 400, "malformed HTTP version"},
        {"HTTP/2.0", "GET /m HTTP/2.0\r\nHost: a\r\n\r\n", 505,
         "only HTTP/1.0 and HTTP/1.1 are served"},
        {"HTTP/0.9", "GET /m HTTP/0.9\r\n\r\n", 505, "only HTTP/1.0 and HTTP/1.1 are served"},
        {"no Host in 1.1", "GET /m HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 request without Host"},
        {"field without colon", "GET /m HTTP/1.1\r\nHost a\r\n\r\n", 400, "malformed header field"},
        {"empty field name", "GET /m HTTP/1.1\r\n: a\r\n\r\n", 400, "malformed header field"},
        {"space before colon", "GET /m HTTP/1.1\r\nHost : a\r\n\r\n", 400,
         "malformed header field name"},
        {"obsolete folding", "GET /m HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400,
         "malformed header field"},
        {"body by length", "GET /m HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n", 400,
         "a request body is not accepted"},
        {"chunked body", "GET /m HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
         "a request body is not accepted"},
        {"bare LF", "GET /m HTTP/1.1\nHost: a\r\n\r\n", 400, "bare LF in the request head"},
        {"bare LF, incomplete", "GET /m HTTP/1.1\nHost: a", 400, "bare LF in the request head"},
        {"bare CR", "GET /m HTTP/1.1\rHost: a\r\n\r\n", 400, "bare CR in the request head"},
        {"NUL", std::string("GET /m HTTP/1.1\r\nHost: \0a\r\n\r\n", 29), 400,
         "NUL in the request head"},
        {"too large, complete",
         "GET /m HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'a') + "\r\n\r\n", 431,
         "request head larger than 256 octets"},
        {"too large, incomplete", "GET /m HTTP/1.1\r\nX: " + std::string(300, 'a'), 431,
         "request head larger than 256 octets"},
    };
    for (const auto& c : cases) {
        auto r = parse(c.request);
        EXPECT_EQ(r.state, HttpParseState::bad) << c.name;
        EXPECT_EQ(r.status, c.status) << c.name;
        EXPECT_EQ(r.reason, c.reason) << c.name;
    }
}

TEST(HttpParse, ResponseHead) {
    const std::string r = httpResponse(404, "text/plain", "nope\n");
    EXPECT_EQ(r,
              "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
              "Connection: close\r\n\r\nnope\n");
    EXPECT_EQ(httpResponse(405, "t", "", "Allow: GET\r\n"),
              "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: t\r\nContent-Length: 0\r\n"
              "Connection: close\r\nAllow: GET\r\n\r\n");
}

// ---- the server on a real loop

class HttpServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        net::HttpServer::Limits limits;
        limits.maxHead = 512;
        limits.timeoutMs = 600;
        server_ = std::make_unique<HttpServer>(loop_, limits);
        server_->addPage("/metrics", {"text/plain", [this]() {
                                          ++renders_;
                                          return std::string("x 1\n");
                                      }});
        auto a = SocketAddress::parse("127.0.0.1", 0);
        ASSERT_TRUE(a);
        ASSERT_TRUE(server_->listen(*a));
        port_ = server_->localAddress()->port();
        // Handles are made on the loop's thread only: the stop handle before the loop runs.
        stop_ = loop_.make<Async>([this] {
            server_->close();
            loop_.stop();
        });
        thread_ = std::thread([this] { loop_.run(); });
    }
    void TearDown() override {
        stop_->send();
        thread_.join();
        stop_.reset();
        server_.reset();
    }

    // Sends `parts` (with a pause between them) and reads until the server closes.
    std::string exchange(const std::vector<std::string>& parts, int pauseMs = 0) {
        return test::httpExchange(port_, parts, pauseMs);
    }

    Loop loop_;
    std::unique_ptr<HttpServer> server_;
    HandlePtr<Async> stop_;
    std::thread thread_;
    std::uint16_t port_ = 0;
    std::atomic<int> renders_{0};
};

TEST_F(HttpServerTest, ServesThePageAndClosesAfterTheResponse) {
    EXPECT_EQ(exchange({"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"}),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n"
              "Connection: close\r\n\r\nx 1\n");
    // Split over several segments.
    EXPECT_EQ(exchange({"GET /met", "rics HTTP/1.1\r\nHo", "st: x\r\n\r\n"}, 30)
                  .rfind("HTTP/1.1 200 OK", 0),
              0u);
    EXPECT_EQ(renders_.load(), 2);
}

TEST_F(HttpServerTest, ErrorsByStatus) {
    EXPECT_EQ(
        exchange({"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"}).rfind("HTTP/1.1 404 Not Found", 0), 0u);
    const std::string post = exchange({"POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n"});
    EXPECT_EQ(post.rfind("HTTP/1.1 405 Method Not Allowed", 0), 0u);
    EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
    EXPECT_EQ(exchange({"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"}).rfind("HTTP/1.1 405", 0), 0u);
    EXPECT_EQ(exchange({"garbage\r\n\r\n"}).rfind("HTTP/1.1 400 Bad Request", 0), 0u);
    EXPECT_EQ(exchange({"GET /metrics HTTP/1.1\r\nX: " + std::string(2000, 'a')})
                  .rfind("HTTP/1.1 431", 0),
              0u);
    EXPECT_EQ(renders_.load(), 0);
}

TEST_F(HttpServerTest, SlowRequestTimesOut) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string r = exchange({"GET /metrics HTTP/1.1\r\n"});
    EXPECT_EQ(r.rfind("HTTP/1.1 408 Request Timeout", 0), 0u) << r;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
}

}  // namespace
}  // namespace best::net
