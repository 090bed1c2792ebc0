// The console's session on the dashboards' WebSocket, end to end: a real bellhop and
// redis-server, an account made with `bellhop user add`, a sign-in over HTTP, and the cookie on
// /v1/realtime; disabling the account or signing out closes the open WebSocket at once.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>

#include "bellhop/contract/ids.hpp"
#include "support/bellhop_config.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "console-realtime-adapter-key-0123456789";
const std::string password = "correct horse battery staple";

std::string str(const rapidjson::Value& v, const char* name) {
  return string_member(v, name);
}

// A shell word: single-quoted.
std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

class ConsoleRealtimeProcess : public ::testing::Test {
 protected:
  // 30 s (the default): within a test's waits, only a revocation message can end a session.
  virtual int heartbeat_s() const { return 30; }

  void SetUp() override {
    port_ = free_port();
    config_ = dir_.path() / "config.json";
    std::ofstream(config_) << "{"
                           << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                  local_url(port_))
                           << R"(
      "properties": [{"id": "hotel-berlin", "time_zone": "Europe/Berlin"},
                     {"id": "hotel-paris", "time_zone": "Europe/Paris"}],
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                           << adapter_key << R"(", "properties": ["*"]}],
               "jwt_secret": "console-realtime-jwt-secret-0123456789abcdef"},
      "realtime": {"heartbeat_s": )"
                           << heartbeat_s() << R"(}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config_.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // `bellhop user <args>` with `stdin` as its standard input; its exit status.
  int user_command(const std::string& args, const std::string& stdin_text = "") {
    const auto out = run_capture("printf '%s\\n' " + quoted(stdin_text) + " | " +
                                     std::string(BELLHOP_BINARY) + " user " + args + " --config " +
                                     quoted(config_.string()) + " >/dev/null 2>&1; echo $?",
                                 false);
    return std::stoi(out.substr(out.find_last_of('\n') + 1));
  }

  // Signs in; the session cookie's value ("" when refused).
  std::string sign_in(const std::string& user) {
    const auto r = http_request(port_, "POST", "/v1/auth/login",
                                R"({"username":")" + user + R"(","password":")" + password + "\"}",
                                {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 200) << r.body;
    const auto it = r.headers.find("set-cookie");
    if (it == r.headers.end()) return {};
    const std::string prefix = "bellhop_session=";
    const auto& header = it->second;
    if (header.rfind(prefix, 0) != 0) return {};
    return header.substr(prefix.size(), header.find(';') - prefix.size());
  }

  std::unique_ptr<ws_client> connect(const std::string& cookie, int status = 101) {
    auto c = std::make_unique<ws_client>();
    c->add_header("Cookie", "bellhop_session=" + cookie);
    c->add_header("Origin", local_url(port_));
    EXPECT_EQ(c->connect(port_, "/v1/realtime"), status) << c->refusal_body();
    return c;
  }

  static rapidjson::Document next(ws_client& c, std::chrono::milliseconds wait = 5s) {
    const auto f = c.receive(wait);
    return f ? parse_json(*f) : rapidjson::Document{};
  }

  // The connection's next frame is session_ended, then close 4401, both within `wait` of now.
  static void expect_session_ended(ws_client& c, std::chrono::milliseconds wait = 2s) {
    const auto e = next(c, wait);
    ASSERT_TRUE(e.IsObject()) << "no frame within the wait";
    EXPECT_EQ(str(e, "type"), "error");
    EXPECT_EQ(str(e, "code"), "session_ended");
    EXPECT_EQ(c.wait_closed(wait), 4401);
  }

  void post_message(const std::string& property, const std::string& text) {
    const auto r = http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":"ext-)" +
            std::to_string(++posted_) + R"(","from":"+4915112345678","text":")" + text + "\"}",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 202) << r.body;
  }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  std::filesystem::path config_;
  child_process bellhop_;
  int posted_ = 0;
};

TEST_F(ConsoleRealtimeProcess, ASignedInStaffMemberGetsTheirPropertiesLiveUntilDisabled) {
  ASSERT_EQ(user_command("add ana --role staff --properties hotel-berlin", password), 0);
  const auto cookie = sign_in("ana");
  ASSERT_FALSE(cookie.empty());

  auto c = connect(cookie);
  auto w = next(*c);
  ASSERT_TRUE(w.IsObject());
  EXPECT_EQ(str(w, "type"), "welcome");
  EXPECT_EQ(str(w, "sub"), "ana");
  EXPECT_FALSE(str(w, "expires_at").empty());

  ASSERT_TRUE(c->send(R"({"type":"subscribe","property_id":"hotel-paris"})"));
  auto f = next(*c);
  EXPECT_EQ(str(f, "code"), "forbidden");
  ASSERT_TRUE(c->send(R"({"type":"subscribe","property_id":"hotel-berlin"})"));
  f = next(*c);
  EXPECT_EQ(str(f, "type"), "subscribed");

  post_message("hotel-paris", "bonjour");
  post_message("hotel-berlin", "guten tag");
  f = next(*c);
  ASSERT_TRUE(f.IsObject());
  EXPECT_EQ(str(f, "type"), "event");
  EXPECT_EQ(str(f, "property_id"), "hotel-berlin");

  // A page of another site cannot use the cookie.
  auto foreign = std::make_unique<ws_client>();
  foreign->add_header("Cookie", "bellhop_session=" + cookie);
  foreign->add_header("Origin", "https://evil.example");
  EXPECT_EQ(foreign->connect(port_, "/v1/realtime"), 403);

  ASSERT_EQ(user_command("disable ana"), 0);
  // Every frame before the end is an event of hotel-berlin; then session_ended and 4401.
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  rapidjson::Document e;
  for (;;) {
    e = next(*c, 2s);
    ASSERT_TRUE(e.IsObject()) << "no session_ended within 2 s of the disable";
    if (str(e, "type") != "event") break;
    EXPECT_EQ(str(e, "property_id"), "hotel-berlin");
  }
  EXPECT_EQ(str(e, "code"), "session_ended");
  EXPECT_EQ(c->wait_closed(2s), 4401);
  EXPECT_LT(std::chrono::steady_clock::now(), deadline);
  connect(cookie, 401);  // the session is gone
}

TEST_F(ConsoleRealtimeProcess, SigningOutEndsThatSessionsWebSocketOnly) {
  ASSERT_EQ(user_command("add ben --role admin --properties '*'", password), 0);
  const auto first = sign_in("ben");
  const auto second = sign_in("ben");
  ASSERT_FALSE(first.empty());
  ASSERT_FALSE(second.empty());
  auto a = connect(first);
  auto b = connect(second);
  EXPECT_EQ(str(next(*a), "type"), "welcome");
  EXPECT_EQ(str(next(*b), "type"), "welcome");

  const auto r =
      http_request(port_, "POST", "/v1/auth/logout", "",
                   {{"Cookie", "bellhop_session=" + first}, {"Origin", "http://127.0.0.1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  expect_session_ended(*a);
  ASSERT_TRUE(b->send(R"({"type":"ping"})"));
  EXPECT_EQ(str(next(*b), "type"), "pong") << "the other session stays";
  connect(first, 401);
}

class ConsoleRealtimeHeartbeat : public ConsoleRealtimeProcess {
 protected:
  int heartbeat_s() const override { return 1; }
};

TEST_F(ConsoleRealtimeHeartbeat, ASessionGoneWithoutAMessageEndsAtTheNextHeartbeat) {
  ASSERT_EQ(user_command("add cleo --role staff --properties hotel-berlin", password), 0);
  ASSERT_EQ(user_command("add dan --role staff --properties hotel-berlin", password), 0);
  const auto dan_cookie = sign_in("dan");
  const auto cleo_cookie = sign_in("cleo");
  auto dan = connect(dan_cookie);
  EXPECT_EQ(str(next(*dan), "type"), "welcome");
  auto cleo = connect(cleo_cookie);
  EXPECT_EQ(str(next(*cleo), "type"), "welcome");
  // Deleted behind Bellhop's back (no PUBLISH): only the heartbeat's re-check can notice.
  EXPECT_EQ(redis_.cli("DEL console:session:" + contract::sha256_hex(cleo_cookie, 16)), "1");
  expect_session_ended(*cleo, 5s);
  // dan connected first, so his session has been re-checked too by now, and kept.
  ASSERT_TRUE(dan->send(R"({"type":"ping"})"));
  EXPECT_EQ(str(next(*dan), "type"), "pong");
}

}  // namespace
}  // namespace bellhop::test
