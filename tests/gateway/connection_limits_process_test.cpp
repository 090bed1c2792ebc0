// Connection limits end to end (docs/configuration.md, "Connection limits"): a real bellhop and
// redis-server; clients are raw sockets bound to chosen loopback addresses (all of 127/8 is
// loopback on Linux), so one test can be several clients.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <rapidjson/document.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string jwt_secret = "limits-test-jwt-secret-0123456789abcdef";

// A blocking TCP client from `source` (an address of 127/8) with 10 s receive and send timeouts:
// a test that waits for an answer, or writes to a server that stopped reading, never hangs, and
// never relies on a timeout to pass.
class raw_client {
 public:
  raw_client(std::uint16_t port, const std::string& source, int receive_buffer = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in from{};
    from.sin_family = AF_INET;
    ::inet_pton(AF_INET, source.c_str(), &from.sin_addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0) {
      close();
      return;
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) close();
  }
  ~raw_client() { close(); }
  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The status of the answer to a WebSocket upgrade (0: no answer); the rest of the answer's
  // head is consumed, its body (a refusal's JSON) kept in body().
  int upgrade(const std::string& target, const std::string& extra_headers = "") {
    if (!send_all("GET " + target +
                  " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                  extra_headers + "\r\n"))
      return 0;
    return read_status();
  }

  // Reads an HTTP answer's head; its status, or 0.
  int read_status() {
    while (buffer_.find("\r\n\r\n") == std::string::npos) {
      if (!fill()) return 0;
    }
    const auto end = buffer_.find("\r\n\r\n") + 4;
    const std::string head = buffer_.substr(0, end);
    buffer_.erase(0, end);
    if (!head.starts_with("HTTP/1.1 ") || head.size() < 12) return 0;
    return std::stoi(head.substr(9, 3));
  }

  // A masked client text frame (mask key 0: the payload goes as it is).
  bool send_text(std::string_view payload) {
    std::string f;
    f.push_back(static_cast<char>(0x81));
    if (payload.size() < 126) {
      f.push_back(static_cast<char>(0x80 | payload.size()));
    } else if (payload.size() <= 0xffff) {
      f.push_back(static_cast<char>(0x80 | 126));
      f.push_back(static_cast<char>(payload.size() >> 8));
      f.push_back(static_cast<char>(payload.size() & 0xff));
    } else {
      f.push_back(static_cast<char>(0x80 | 127));
      for (int i = 7; i >= 0; --i)
        f.push_back(static_cast<char>((payload.size() >> (8 * i)) & 0xff));
    }
    f.append(4, '\0');
    f.append(payload);
    return send_all(f);
  }

  // The next server text frame's payload; nullopt at the end of the stream (or after 10 s).
  std::optional<std::string> receive_text() {
    for (;;) {
      while (buffer_.size() < 2) {
        if (!fill()) return std::nullopt;
      }
      const auto op = static_cast<unsigned char>(buffer_[0]) & 0x0f;
      std::size_t len = static_cast<unsigned char>(buffer_[1]) & 0x7f;
      std::size_t head = 2;
      if (len == 126) head = 4;
      if (len == 127) head = 10;
      while (buffer_.size() < head) {
        if (!fill()) return std::nullopt;
      }
      if (head > 2) {
        len = 0;
        for (std::size_t i = 2; i < head; ++i)
          len = (len << 8) | static_cast<unsigned char>(buffer_[i]);
      }
      while (buffer_.size() < head + len) {
        if (!fill()) return std::nullopt;
      }
      std::string payload = buffer_.substr(head, len);
      buffer_.erase(0, head + len);
      if (op == 0x8) return std::nullopt;  // close
      if (op == 0x1) return payload;
    }
  }

 private:
  bool fill() {
    char chunk[16384];
    const auto n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

// The resident memory of a process, from /proc/<pid>/status, in kB.
long resident_kb(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return -1;
}

class ConnectionLimitsProcess : public ::testing::Test {
 public:  // the never-reading tests share a function of their own
  // `http` and `webchat`: extra members of those sections; `ratelimit`: the section's members.
  void start_bellhop(const std::string& http, const std::string& webchat,
                     const std::string& ratelimit = "", const std::string& realtime = "") {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "http": {"threads": 2, "read_timeout_ms": 60000)"
                          << http << R"(},
      "redis": {"url": ")" << redis_.url()
                          << R"(", "command_timeout_ms": 1000},
      "auth": {"jwt_secret": ")"
                          << jwt_secret << R"("},
      "realtime": {"heartbeat_s": 30)"
                          << realtime << R"(},
      "ratelimit": {)" << ratelimit
                          << R"(},
      "channels": {"webchat": {"property_id": "hotel-berlin")"
                          << webchat << R"(}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  temp_dir dir_;
  redis_server redis_;
  child_process bellhop_;
  std::uint16_t port_ = 0;
};

TEST_F(ConnectionLimitsProcess, ThousandsOfGuestSocketsFromOneAddressGetOnlyItsShare) {
  start_bellhop("", "");  // the defaults: 100 guest sockets per address, 500 connections
  std::vector<std::unique_ptr<raw_client>> open;
  int upgraded = 0, refused = 0;
  for (int i = 0; i < 2000; ++i) {
    auto c = std::make_unique<raw_client>(port_, "127.0.0.1");
    ASSERT_TRUE(c->connected());
    const int status = c->upgrade("/v1/webchat");
    if (status == 101) {
      ++upgraded;
      open.push_back(std::move(c));
    } else {
      EXPECT_EQ(status, 429);
      ++refused;
    }
  }
  EXPECT_EQ(upgraded, 100);
  EXPECT_EQ(refused, 1900);

  // Another address still gets in, and the server answers everyone else.
  raw_client other(port_, "127.0.0.2");
  EXPECT_EQ(other.upgrade("/v1/webchat"), 101);
  EXPECT_EQ(http_get(port_, "/readyz").status, 200);
  // A closed socket frees its place.
  open.pop_back();
  EXPECT_TRUE(eventually([&] {
    raw_client again(port_, "127.0.0.1");
    return again.upgrade("/v1/webchat") == 101;
  }));
}

TEST_F(ConnectionLimitsProcess, OneAddressCannotHoldEveryConnectionAndUpgradedSocketsCount) {
  start_bellhop("", "");  // the default: 500 connections per address
  // 100 WebSockets (they keep counting after the upgrade) and 400 idle connections: 500.
  std::vector<std::unique_ptr<raw_client>> held;
  for (int i = 0; i < 100; ++i) {
    held.push_back(std::make_unique<raw_client>(port_, "127.0.0.1"));
    ASSERT_EQ(held.back()->upgrade("/v1/webchat"), 101);
  }
  for (int i = 0; i < 400; ++i) held.push_back(std::make_unique<raw_client>(port_, "127.0.0.1"));
  for (int i = 0; i < 100; ++i) {
    raw_client more(port_, "127.0.0.1");
    ASSERT_TRUE(more.connected());
    ASSERT_EQ(more.read_status(), 429) << "connection " << i << " over the per-address cap";
  }
  raw_client other(port_, "127.0.0.2");
  ASSERT_TRUE(other.send_all("GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(other.read_status(), 200);
}

TEST_F(ConnectionLimitsProcess, ForwardedForIsBelievedOnlyFromATrustedProxy) {
  start_bellhop(R"(, "trusted_proxies": ["127.0.0.2"])", R"(, "max_sockets_per_ip": 2)");
  std::vector<std::unique_ptr<raw_client>> held;
  auto upgrade = [&](const std::string& source, const std::string& forwarded_for) {
    auto c = std::make_unique<raw_client>(port_, source);
    const int status = c->upgrade("/v1/webchat", "X-Forwarded-For: " + forwarded_for + "\r\n");
    held.push_back(std::move(c));
    return status;
  };
  // From an untrusted peer the header is ignored: every socket counts for 127.0.0.1.
  EXPECT_EQ(upgrade("127.0.0.1", "198.51.100.1"), 101);
  EXPECT_EQ(upgrade("127.0.0.1", "198.51.100.2"), 101);
  EXPECT_EQ(upgrade("127.0.0.1", "198.51.100.3"), 429);
  // Through the proxy, each forwarded client has its own share.
  EXPECT_EQ(upgrade("127.0.0.2", "198.51.100.1"), 101);
  EXPECT_EQ(upgrade("127.0.0.2", "203.0.113.9, 198.51.100.1"), 101);
  EXPECT_EQ(upgrade("127.0.0.2", "198.51.100.1"), 429);
  EXPECT_EQ(upgrade("127.0.0.2", "198.51.100.2"), 101);
}

TEST_F(ConnectionLimitsProcess, AProxysConnectionsCountForTheForwardedClientOnceUpgraded) {
  start_bellhop(R"(, "trusted_proxies": ["127.0.0.2"], "max_connections_per_ip": 2)", "");
  // The proxy carries many clients: its plain HTTP connections are not one client's.
  std::vector<std::unique_ptr<raw_client>> held;
  for (int i = 0; i < 5; ++i) {
    held.push_back(std::make_unique<raw_client>(port_, "127.0.0.2"));
    ASSERT_TRUE(held.back()->send_all("GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_EQ(held.back()->read_status(), 200) << "proxy connection " << i;
  }
  // Upgraded, a connection is the forwarded client's, under http.max_connections_per_ip.
  auto upgrade = [&](const std::string& client) {
    held.push_back(std::make_unique<raw_client>(port_, "127.0.0.2"));
    return held.back()->upgrade("/v1/webchat", "X-Forwarded-For: " + client + "\r\n");
  };
  EXPECT_EQ(upgrade("198.51.100.1"), 101);
  EXPECT_EQ(upgrade("198.51.100.1"), 101);
  EXPECT_EQ(upgrade("198.51.100.1"), 429);
  EXPECT_EQ(upgrade("198.51.100.2"), 101);
}

TEST_F(ConnectionLimitsProcess, AMessageFloodIsRateLimitedPerGuestAndPerAddress) {
  start_bellhop("", "",
                R"("policies": {"webchat_session": {"algorithm": "fixed_window", "limit": 5,
                                                     "window_ms": 3600000},
                                 "webchat_ip": {"algorithm": "fixed_window", "limit": 8,
                                                "window_ms": 3600000}})");
  // What one guest's `count` messages get: acks, and rate_limited errors with retry_after_ms.
  auto flood = [&](raw_client& c, int count, const std::string& tag) {
    std::pair<int, int> got{0, 0};
    for (int i = 0; i < count; ++i) {
      if (!c.send_text(R"({"type":"message","client_id":")" + tag + std::to_string(i) +
                       R"(","text":"hello"})"))
        break;
    }
    while (got.first + got.second < count) {
      auto f = c.receive_text();
      if (!f) break;
      auto d = parse_json(*f);
      const auto type = string_member(d, "type");
      if (type == "ack") ++got.first;
      if (type == "error") {
        EXPECT_EQ(string_member(d, "code"), "rate_limited") << *f;
        EXPECT_TRUE(d.HasMember("retry_after_ms") && d["retry_after_ms"].IsInt64() &&
                    d["retry_after_ms"].GetInt64() > 0)
            << *f;
        ++got.second;
      }
    }
    return got;
  };
  raw_client a(port_, "127.0.0.1"), b(port_, "127.0.0.1"), c(port_, "127.0.0.2");
  for (auto* s : {&a, &b, &c}) {
    ASSERT_EQ(s->upgrade("/v1/webchat"), 101);
    ASSERT_EQ(string_member(parse_json(s->receive_text().value_or("{}")), "type"), "welcome");
  }
  EXPECT_EQ(flood(a, 300, "a"), std::make_pair(5, 295)) << "5 per guest";
  EXPECT_EQ(flood(b, 10, "b"), std::make_pair(3, 7)) << "8 per address: 3 left for b";
  EXPECT_EQ(flood(c, 1, "c"), std::make_pair(1, 0)) << "another address";
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "9") << "refused messages are not queued";
}

TEST_F(ConnectionLimitsProcess, ABacklogLargerThanTheSendQueueReachesAGuestWhoReads) {
  start_bellhop("", "");  // web chat's send_queue_bytes: 256 kB
  std::string session, guest;
  {
    raw_client first(port_, "127.0.0.1");
    ASSERT_EQ(first.upgrade("/v1/webchat"), 101);
    auto welcome = parse_json(first.receive_text().value_or("{}"));
    session = string_member(welcome, "session");
    guest = string_member(welcome, "guest");
  }  // away
  const std::string text(10000, 'r');
  for (int i = 0; i < 40; ++i) {
    redis_.cli(
        R"(LPUSH outbound:webchat '{"property_id":"hotel-berlin","channel":"webchat","to":")" +
        guest + R"(","text":")" + text + R"("}')");
  }
  ASSERT_TRUE(
      eventually([&] { return redis_.cli("HLEN webchat:" + guest + ":outbox") == "40"; }, 30s))
      << bellhop_.output();
  raw_client back(port_, "127.0.0.1");
  ASSERT_EQ(back.upgrade("/v1/webchat?session=" + session), 101);
  int replies = 0;
  while (replies < 40) {
    auto f = back.receive_text();
    if (!f) break;
    if (string_member(parse_json(*f), "type") == "message") ++replies;
  }
  EXPECT_EQ(replies, 40) << "400 kB waited; the socket must not be closed as slow for it";
}

// A sample of bellhop's /metrics (the first series of that name), or -1.
double metric(std::uint16_t port, const std::string& name) {
  const auto body = http_get(port, "/metrics").body;
  for (std::size_t at = body.find(name); at != std::string::npos; at = body.find(name, at + 1)) {
    if (at > 0 && body[at - 1] != '\n') continue;
    const auto space = body.find(' ', at);
    if (space == std::string::npos ||
        (body[at + name.size()] != ' ' && body[at + name.size()] != '{'))
      continue;
    return std::stod(body.substr(space + 1, body.find('\n', space) - space - 1));
  }
  return -1;
}

// `sockets` clients that send without ever reading, while every frame they send gets an answer
// (an error frame that, before, carried a 60 kB echo of the frame). Returns bellhop's peak
// resident memory (kB) until `closed_metric` says the server closed all of them (or 60 s).
long flood_without_reading(std::uint16_t port, int sockets, const std::string& target, int pid,
                           const std::string& closed_metric) {
  const std::string big = R"({"type":")" + std::string(60000, 'x') + "\"}";
  const std::string small = R"({"type":"y"})";
  std::atomic<bool> done{false};
  std::atomic<int> upgraded{0};
  long peak_kb = resident_kb(pid);
  std::thread sampler([&] {
    while (!done) {
      peak_kb = std::max(peak_kb, resident_kb(pid));
      std::this_thread::sleep_for(2ms);
    }
  });
  const double closed_before = std::max(0.0, metric(port, closed_metric));
  const double active_before = metric(port, "bellhop_http_connections_active");
  std::vector<std::thread> clients;
  for (int i = 0; i < sockets; ++i) {
    clients.emplace_back([&, i] {
      raw_client c(port, "127.0.0.1", 4096);
      if (const int status = c.upgrade(target); status != 101) {
        ADD_FAILURE() << "upgrade " << i << ": " << status;
        return;
      }
      ++upgraded;
      bool sending = true;
      for (int n = 0; sending && n < 300; ++n) sending = c.send_text(big);
      for (int n = 0; sending && n < 40000; ++n) sending = c.send_text(small);
      while (!done) std::this_thread::sleep_for(10ms);  // holding the socket, reading nothing
    });
  }
  // Every socket let go (its connection slot free again): closed as too slow when its unsent
  // bytes pass the bound, or, on a loaded machine where a flood arrives more slowly than that,
  // by the WebSocket idle timeout its keep-alive ping, stuck behind the backlog, runs into.
  EXPECT_TRUE(eventually([&] { return upgraded == sockets; }, 30s));
  EXPECT_TRUE(eventually(
      [&] { return metric(port, "bellhop_http_connections_active") <= active_before; }, 120s))
      << target.substr(0, target.find('?')) << ": " << metric(port, "bellhop_http_connections_active")
      << " connections open, " << active_before << " before; " << closed_metric << " = "
      << metric(port, closed_metric);
  EXPECT_GE(metric(port, closed_metric) - closed_before, sockets / 2)
      << "most sockets are closed as too slow, by the send queue's bound";
  done = true;
  for (auto& t : clients) t.join();
  sampler.join();
  return peak_kb;
}

// One socket kind per test: when the machine is loaded, the sockets of one kind may be let go
// only by the WebSocket idle timeout (60-75 s), and both kinds in one test would pass the
// per-test time limit.
void never_reading_sockets_are_closed(ConnectionLimitsProcess& t, const std::string& target,
                                      const std::string& closed_metric) {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in quarantine (256 MB) to catch use after free, which
  // would show here as growth: the sanitized bellhop gets none, so what is measured is what
  // Bellhop holds, as in a release build.
  const char* asan = std::getenv("ASAN_OPTIONS");
  const std::string options = std::string(asan ? asan : "") + (asan && *asan ? ":" : "") +
                              "quarantine_size_mb=0:thread_local_quarantine_size_kb=0";
  ::setenv("ASAN_OPTIONS", options.c_str(), 1);
#endif
  // Web chat's default send_queue_bytes is 256 kB.
  t.start_bellhop("", "", "", R"(, "send_queue_bytes": 262144)");
  const long before = resident_kb(t.bellhop_.pid());
  ASSERT_GT(before, 0);
  const long peak = flood_without_reading(t.port_, 16, target, t.bellhop_.pid(), closed_metric);
  const auto path = target.substr(0, target.find('?'));
  std::printf("%s: resident memory %ld kB before, %ld kB at the peak\n", path.c_str(), before,
              peak);
  std::fflush(stdout);
  // 16 sockets sent 18 MB each; before, each could hold most of it in its queue.
  EXPECT_LT(peak - before, 96 * 1024)
      << path << ": resident memory grew from " << before << " kB to " << peak << " kB";
  EXPECT_EQ(http_get(t.port_, "/readyz").status, 200);
}

TEST_F(ConnectionLimitsProcess, GuestsThatNeverReadAreClosedAndMemoryStaysBounded) {
  never_reading_sockets_are_closed(*this, "/v1/webchat", "bellhop_webchat_slow_closed_total");
}

TEST_F(ConnectionLimitsProcess, DashboardsThatNeverReadAreClosedAndMemoryStaysBounded) {
  const auto token =
      contract::mint_staff_token(jwt_secret, "alice", {"*"}, std::chrono::system_clock::now(), 1h);
  never_reading_sockets_are_closed(*this, "/v1/realtime?token=" + token,
                                   "bellhop_realtime_slow_closed_total");
}

}  // namespace
}  // namespace bellhop::test
