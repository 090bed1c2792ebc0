// Web chat end to end: a real bellhop and redis-server, guests as WebSocket clients on
// /v1/webchat, replies pushed by an AI engine onto outbound:webchat.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>

#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

class WebchatProcess : public ::testing::Test {
 protected:
  void start_bellhop(const std::string& webchat = R"({"property_id": "hotel-berlin"})") {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)" << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string() << R"(",
      "redis": {"url": ")" << redis_.url() << R"(", "command_timeout_ms": 1000},
      "outbound": {"backoff_initial_ms": 100},
      "channels": {)" << (webchat.empty() ? "" : "\"webchat\": " + webchat) << R"(}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // Connects (with a session token, to come back) and reads the welcome frame.
  rapidjson::Document connect(ws_client& c, const std::string& session = "") {
    EXPECT_EQ(c.connect(port_, "/v1/webchat" + (session.empty() ? "" : "?session=" + session)),
              101)
        << c.refusal_body();
    auto welcome = parse_json(c.receive().value_or("{}"));
    EXPECT_EQ(string_member(welcome, "type"), "welcome");
    return welcome;
  }

  // The next frame of `type`, skipping others; an empty object after 10 s.
  static rapidjson::Document next(ws_client& c, const std::string& type) {
    for (int i = 0; i < 20; ++i) {
      auto f = c.receive();
      if (!f) break;
      auto d = parse_json(*f);
      if (string_member(d, "type") == type) return d;
    }
    ADD_FAILURE() << "no " << type << " frame";
    return parse_json("{}");
  }

  void reply(const std::string& guest, const std::string& text) {
    redis_.cli(R"(LPUSH outbound:webchat '{"property_id":"hotel-berlin","channel":"webchat","to":")" +
               guest + R"(","text":")" + text + R"("}')");
  }

  temp_dir dir_;
  redis_server redis_;
  child_process bellhop_;
  std::uint16_t port_ = 0;
};

TEST_F(WebchatProcess, AGuestsMessageIsIngestedAndTheReplyReachesTheirSocket) {
  start_bellhop();
  ws_client guest;
  auto welcome = connect(guest);
  const auto session = string_member(welcome, "session");
  const auto name = string_member(welcome, "guest");
  EXPECT_EQ(session.size(), 43u);
  EXPECT_EQ(name.rfind("wc_", 0), 0u);
  EXPECT_EQ(string_member(welcome, "property_id"), "hotel-berlin");

  guest.send(R"({"type":"message","client_id":"m1","text":"Is the pool open?"})");
  auto ack = next(guest, "ack");
  EXPECT_EQ(string_member(ack, "client_id"), "m1");
  EXPECT_EQ(string_member(ack, "status"), "queued");
  auto queued = parse_json(redis_.cli("LINDEX inbound:messages 0"));
  EXPECT_EQ(string_member(queued, "channel"), "webchat");
  EXPECT_EQ(string_member(queued, "from"), name);
  EXPECT_EQ(string_member(queued, "text"), "Is the pool open?");
  EXPECT_EQ(string_member(queued, "id"), string_member(ack, "id"));
  EXPECT_EQ(redis_.cli("KEYS *" + session + "*"), "") << "the token never reaches Redis";

  // The same client_id again (a browser retrying): a duplicate, one queue entry.
  guest.send(R"({"type":"message","client_id":"m1","text":"Is the pool open?"})");
  EXPECT_EQ(string_member(next(guest, "ack"), "status"), "duplicate");
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "1");

  reply(name, "Until 10 pm.");
  auto shown = next(guest, "message");
  EXPECT_EQ(string_member(shown, "text"), "Until 10 pm.");
  ASSERT_TRUE(eventually([&] {
    return redis_.cli("HGET message:" + string_member(shown, "id") + " status") == "sent";
  }, 5s));
  guest.send(R"({"type":"received","id":")" + string_member(shown, "id") + "\"}");
  EXPECT_TRUE(eventually([&] { return redis_.cli("EXISTS webchat:" + name + ":outbox") == "0"; },
                         5s));
}

TEST_F(WebchatProcess, RepliesWaitForAGuestWhoIsAwayAndComeWhenTheyReturn) {
  start_bellhop(R"({"property_id": "hotel-berlin", "hold_s": 600})");
  std::string session, name;
  {
    ws_client guest;
    auto welcome = connect(guest);
    session = string_member(welcome, "session");
    name = string_member(welcome, "guest");
  }  // the tab is closed
  reply(name, "Your room is ready.");
  reply(name, "Enjoy your stay!");
  ASSERT_TRUE(eventually([&] { return redis_.cli("HLEN webchat:" + name + ":outbox") == "2"; },
                         10s))
      << bellhop_.output();
  const auto ttl = std::stoi(redis_.cli("TTL webchat:" + name + ":outbox"));
  EXPECT_GT(ttl, 500);
  EXPECT_LE(ttl, 600);

  ws_client back;
  auto welcome = connect(back, session);
  EXPECT_EQ(string_member(welcome, "guest"), name) << "the same guest again";
  EXPECT_EQ(string_member(next(back, "message"), "text"), "Your room is ready.");
  EXPECT_EQ(string_member(next(back, "message"), "text"), "Enjoy your stay!");
}

TEST_F(WebchatProcess, BadFramesGetErrorFramesAndBadUpgradesAreRefused) {
  start_bellhop();
  ws_client guest;
  connect(guest);
  guest.send("not json");
  EXPECT_EQ(string_member(next(guest, "error"), "code"), "malformed");
  guest.send(R"({"type":"message","text":"no id"})");
  EXPECT_EQ(string_member(next(guest, "error"), "code"), "invalid_frame");
  guest.send(R"({"type":"message","client_id":"m2"})");
  EXPECT_EQ(string_member(next(guest, "error"), "client_id"), "m2");
  guest.send(R"({"type":"dance"})");
  EXPECT_EQ(string_member(next(guest, "error"), "code"), "unknown_type");
  guest.send(R"({"type":"message","client_id":"m3","text":")" + std::string(20000, 'x') + "\"}");
  auto long_text = next(guest, "error");
  EXPECT_EQ(string_member(long_text, "client_id"), "m3");
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
  // Still usable after all that.
  guest.send(R"({"type":"message","client_id":"m4","text":"hello"})");
  EXPECT_EQ(string_member(next(guest, "ack"), "status"), "queued");

  ws_client forged;
  EXPECT_EQ(forged.connect(port_, "/v1/webchat?session=short"), 400);
  EXPECT_EQ(string_member(parse_json(forged.refusal_body())["error"], "code"), "invalid_session");

  // A reply to someone who is no web-chat guest is dead, with the reason.
  reply("+4915112345678", "hello?");
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:webchat:dead") == "1"; }, 10s));
  EXPECT_NE(redis_.cli("LINDEX outbound:webchat:dead 0").find("not a web-chat guest"),
            std::string::npos);
}

TEST_F(WebchatProcess, NotConfiguredIs404) {
  start_bellhop("");
  ws_client c;
  EXPECT_EQ(c.connect(port_, "/v1/webchat"), 404);
  EXPECT_EQ(string_member(parse_json(c.refusal_body())["error"], "code"), "not_configured");
}

TEST_F(WebchatProcess, AnotherSitesPageIsRefused) {
  start_bellhop(R"({"property_id": "hotel-berlin", "allowed_origin": "https://hotel-berlin.example"})");
  ws_client c;  // the test client sends no Origin: not the hotel's site
  EXPECT_EQ(c.connect(port_, "/v1/webchat"), 403);
}

}  // namespace
}  // namespace bellhop::test
