// Message framing (RFC 9112 6.1, 6.3) against a real bellhop: each ambiguous request is answered
// with its documented status and the connection closed, and the request smuggled behind it (a
// POST that would queue a message) never runs. Raw bytes over a raw socket: an HTTP client
// library would not send these requests.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "framing-test-key-0123456789";

struct raw_exchange {
  std::string received;
  bool closed = false;  // the server closed the connection (we read its end of stream)
};

// Sends `bytes` on a new connection and reads until the server closes it, or until it has
// been silent for 5 s (then `closed` is false: the server kept the connection for more).
raw_exchange send_raw(std::uint16_t port, const std::string& bytes) {
  raw_exchange out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return out;
  }
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<std::size_t>(n);
  }
  char buf[4096];
  for (;;) {
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      out.closed = true;
      break;
    }
    if (n < 0) break;  // timed out: still open
    out.received.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

int status_of(const std::string& response) {
  if (response.size() < 12 || response.rfind("HTTP/1.", 0) != 0) return 0;
  return std::stoi(response.substr(9, 3));
}

// Status lines ("HTTP/1.x NNN ") in what the server sent.
std::size_t responses_in(const std::string& received) {
  std::size_t n = 0;
  for (auto at = received.find("HTTP/1."); at != std::string::npos;
       at = received.find("HTTP/1.", at + 1)) {
    const auto line = received.substr(at, 13);
    if (line.size() == 13 && line[8] == ' ' && std::isdigit(static_cast<unsigned char>(line[9])) &&
        line[12] == ' ')
      ++n;
  }
  return n;
}

// A complete, valid POST that queues one message: what an attacker hides behind the first.
std::string smuggled_post() {
  const std::string body =
      R"({"property_id":"hotel-a","channel":"sms","external_id":"smuggled","from":"+1","text":"x"})";
  return "POST /v1/messages/inbound HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer " + adapter_key +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

class Framing : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "redis": {"url": ")" << redis_.url()
                          << R"("},
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]}]}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  std::string queued() { return redis_.cli("LLEN inbound:messages"); }

  // `head` (request line and fields, without the blank line) and `body`, then the smuggled POST.
  void expect_refused(const std::string& head, const std::string& body, int status,
                      const std::string& code) {
    const auto r = send_raw(port_, head + "\r\n\r\n" + body + smuggled_post());
    EXPECT_EQ(status_of(r.received), status) << head << "\n--\n" << r.received;
    EXPECT_NE(r.received.find("\"code\":\"" + code + "\""), std::string::npos) << r.received;
    EXPECT_EQ(responses_in(r.received), 1u) << r.received;
    EXPECT_TRUE(r.closed) << head;
    EXPECT_EQ(queued(), "0") << head;
  }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
};

const std::string post_head = "POST /v1/messages/inbound HTTP/1.1\r\nHost: a";

TEST_F(Framing, AWellFramedChunkedRequestAndOneBehindItBothRun) {
  // The control: the same smuggled bytes behind a correctly framed request are a second request.
  const std::string body =
      R"({"property_id":"hotel-a","channel":"sms","external_id":"first","from":"+1","text":"x"})";
  char size[16];
  std::snprintf(size, sizeof size, "%zx", body.size());
  const auto r =
      send_raw(port_, post_head + "\r\nAuthorization: Bearer " + adapter_key +
                          "\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" +
                          size + "\r\n" + body + "\r\n0\r\n\r\n" + smuggled_post());
  EXPECT_EQ(status_of(r.received), 202) << r.received;
  EXPECT_EQ(responses_in(r.received), 2u) << r.received;
  EXPECT_EQ(queued(), "2");
}

TEST_F(Framing, FinalCodingNotChunkedIs400) {
  expect_refused(post_head + "\r\nTransfer-Encoding: gzip", "", 400, "bad_framing");
}

TEST_F(Framing, ChunkedTwiceIs400) {
  expect_refused(post_head + "\r\nTransfer-Encoding: chunked, chunked", "", 400, "bad_framing");
}

TEST_F(Framing, ChunkedThenAnotherCodingIs400) {
  expect_refused(post_head + "\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip", "", 400,
                 "bad_framing");
}

TEST_F(Framing, EmptyTransferEncodingIs400) {
  expect_refused(post_head + "\r\nTransfer-Encoding: ", "", 400, "bad_framing");
}

TEST_F(Framing, TransferEncodingWithContentLengthIs400) {
  // Beast would frame this by Content-Length (the coding is not chunked); a proxy in front may
  // frame it by Transfer-Encoding.
  expect_refused(post_head + "\r\nTransfer-Encoding: gzip\r\nContent-Length: 2", "{}", 400,
                 "bad_framing");
  // Chunked with Content-Length, either order: Beast's parser refuses it; the code says why.
  expect_refused(post_head + "\r\nTransfer-Encoding: chunked\r\nContent-Length: 5", "0\r\n\r\n",
                 400, "bad_framing");
  expect_refused(post_head + "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", "0\r\n\r\n",
                 400, "bad_framing");
}

TEST_F(Framing, TransferEncodingInHttp10Is400) {
  expect_refused(
      "POST /v1/messages/inbound HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n"
      "Transfer-Encoding: chunked",
      "0\r\n\r\n", 400, "bad_framing");
}

TEST_F(Framing, AnUnknownCodingBeforeChunkedIs501) {
  expect_refused(post_head + "\r\nTransfer-Encoding: gzip, chunked", "0\r\n\r\n", 501,
                 "unsupported_transfer_coding");
}

TEST_F(Framing, ContentLengthsThatDisagreeAre400) {
  expect_refused(post_head + "\r\nContent-Length: 2\r\nContent-Length: 3", "{}", 400,
                 "bad_framing");
  expect_refused(post_head + "\r\nContent-Length: 2, 3", "{}", 400, "bad_framing");
  expect_refused(post_head + "\r\nContent-Length: +2", "{}", 400, "bad_framing");
}

TEST_F(Framing, ContentLengthsThatAgreeAreOneLength) {
  // RFC 9112 6.3 (5): a list of equal valid values is that value.
  const std::string body = smuggled_post().substr(smuggled_post().find("\r\n\r\n") + 4);
  const auto r = send_raw(port_, post_head + "\r\nAuthorization: Bearer " + adapter_key +
                                     "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                     "Content-Length: " +
                                     std::to_string(body.size()) + ", " +
                                     std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(status_of(r.received), 202) << r.received;
}

}  // namespace
}  // namespace bellhop::test
