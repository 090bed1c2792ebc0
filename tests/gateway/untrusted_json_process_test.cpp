// Untrusted JSON end to end (docs/security.md): real bellhop and redis-server processes.
// - A body nested a million levels deep, and one just over the size limit, on every JSON
//   endpoint and on both WebSockets, get their documented errors and Bellhop stays up.
// - Poison elements planted in every list Bellhop consumes go to that list's dead letters with a
//   reason, are counted in bellhop_poison_elements_total, and the loop goes on.
// - Bellhop started with poison already planted comes up and stays up (no crash loop).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <fstream>
#include <functional>
#include <map>

#include "bellhop/contract/staff_token.hpp"
#include "bellhop/json/parse.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "untrusted-json-key-0123456789";
const std::string jwt_secret = "untrusted-json-jwt-secret-0123456789abcdef";
const std::string app_secret = "whatsapp-app-secret";
const std::string email_secret = "email-webhook-secret";
constexpr std::size_t max_body_bytes = 1048576;  // http.max_body_bytes (the default)
constexpr std::size_t million = 1000000;

// A million levels of arrays: 1,000,000 bytes, under the body limit. Unclosed: the recursive
// parser Bellhop used to have exhausted its stack long before it could see that.
std::string million_deep() {
  return std::string(million, '[');
}

std::string hmac_header(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

// Frames and bodies are read through the bounded parser too: a poison frame that reached the
// test must fail it, not crash it.
rapidjson::Document parse_bounded(const std::string& text) {
  rapidjson::Document d;
  if (!json::parse(text, d, {.max_bytes = 4 << 20})) d.SetObject();
  return d;
}

fake_response graph_ok(std::size_t index) {
  return {200, R"({"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],)"
               R"("messages":[{"id":"wamid.)" +
                   std::to_string(index) + R"("}]})"};
}

// One Redis command over RESP, for values redis-cli cannot take on its command line (a
// million-byte element, invalid UTF-8). Returns the reply's first line.
std::string redis_command(std::uint16_t port, const std::vector<std::string>& args) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  asio::write(s, asio::buffer(req));
  asio::streambuf buf;
  asio::read_until(s, buf, "\r\n");
  std::istream in(&buf);
  std::string line;
  std::getline(in, line);
  return line;
}

// The poison kinds planted in every list: a million levels deep, invalid UTF-8, not JSON, and
// JSON whose fields have the wrong types.
struct poison {
  std::string reason;  // the metric's reason label
  std::string element;
};
std::vector<poison> poisons(const std::string& wrong_types) {
  return {{"too_deep", million_deep()},
          {"invalid_utf8", "{\"property_id\":\"hotel-berlin\",\"text\":\"\xff\xfe\"}"},
          {"syntax", "not json {"},
          {"invalid", wrong_types}};
}

class UntrustedJson : public ::testing::Test {
 protected:
  void start_bellhop() {
    if (port_ == 0) port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                 local_url(port_))
                          << R"(
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(",
                                  "properties": ["*"]}],
               "jwt_secret": ")"
                          << jwt_secret << R"("},
      "inbound": {"reaper_interval_ms": 100, "max_deliveries": 1},
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400},
      "realtime": {"max_frame_bytes": 2097152},
      "channels": {
        "whatsapp": {"app_secret": ")"
                          << app_secret << R"(", "verify_token": "verify",
          "access_token": "graph-token", "phone_number_id": "1234", "service_window_s": 0,
          "property_id": "hotel-berlin", "api_base_url": ")"
                          << graph_.url() << R"(/v21.0"},
        "email": {"webhook_secret": ")"
                          << email_secret << R"(",
          "from_address": "frontdesk@hotel-berlin.example", "smtp_url": "smtp://127.0.0.1:9",
          "property_id": "hotel-berlin"},
        "webchat": {"property_id": "hotel-berlin"}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
    ASSERT_TRUE(ready(20s)) << bellhop_.output();
  }

  bool ready(std::chrono::milliseconds timeout = 10s) {
    return eventually([&] { return http_get(port_, "/readyz").status == 200; }, timeout);
  }

  // Alive: the process has not exited and answers /readyz with 200.
  void expect_alive() {
    EXPECT_TRUE(bellhop_.running()) << bellhop_.output();
    EXPECT_EQ(http_get(port_, "/readyz").status, 200) << bellhop_.output();
  }

  // bellhop_poison_elements_total{source,reason}, 0 when absent.
  double poison_count(const std::string& source, const std::string& reason) {
    const auto body = http_get(port_, "/metrics").body;
    const std::string series =
        "bellhop_poison_elements_total{source=\"" + source + "\",reason=\"" + reason + "\"} ";
    const auto at = body.find(series);
    return at == std::string::npos ? 0 : std::stod(body.substr(at + series.size()));
  }

  void plant(const std::vector<std::string>& command) {
    ASSERT_NE(redis_command(redis_.port(), command).substr(0, 1), "-");
  }

  http_result post(const std::string& target, const std::string& body,
                   std::map<std::string, std::string> headers) {
    headers.emplace("Content-Type", "application/json");
    return http_request(port_, "POST", target, body, headers);
  }

  std::string staff_token() {
    return contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                      std::chrono::system_clock::now(), 1h);
  }

  temp_dir dir_;
  redis_server redis_;
  fake_provider graph_{[](const fake_request&, std::size_t i) { return graph_ok(i); }};
  child_process bellhop_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(UntrustedJson, DeepAndOversizedBodiesOnEveryJsonEndpointGetTheirErrors) {
  start_bellhop();
  const std::map<std::string, std::string> adapter = {{"Authorization", "Bearer " + adapter_key}};
  struct endpoint {
    std::string target;
    std::function<std::map<std::string, std::string>(const std::string&)> headers;
  };
  const std::vector<endpoint> endpoints = {
      {"/v1/messages/inbound", [&](const std::string&) { return adapter; }},
      {"/v1/messages/outbound", [&](const std::string&) { return adapter; }},
      {"/v1/webhooks/whatsapp",
       [](const std::string& body) {
         return std::map<std::string, std::string>{
             {"X-Hub-Signature-256", hmac_header(app_secret, body)}};
       }},
      {"/v1/webhooks/email",
       [](const std::string& body) {
         return std::map<std::string, std::string>{
             {"X-Bellhop-Signature", hmac_header(email_secret, body)}};
       }},
  };
  const std::string deep = million_deep();
  const std::string oversized(max_body_bytes + 1, '[');
  for (const auto& e : endpoints) {
    SCOPED_TRACE(e.target);
    const auto r = post(e.target, deep, e.headers(deep));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(string_member(parse_bounded(r.body)["error"], "code"), "malformed_json") << r.body;
    EXPECT_LT(r.body.size(), 1000u) << "the error never echoes the input";
    expect_alive();

    const auto big = post(e.target, oversized, e.headers(oversized));
    EXPECT_EQ(big.status, 413) << big.body;
    EXPECT_EQ(string_member(parse_bounded(big.body)["error"], "code"), "payload_too_large")
        << big.body;
    expect_alive();
  }

  {  // The dashboards' WebSocket, its frame limit raised to 2 MiB: the whole million levels.
    ws_client c;
    ASSERT_EQ(c.connect(port_, "/v1/realtime?token=" + staff_token()), 101);
    ASSERT_TRUE(c.receive().has_value());  // welcome
    ASSERT_TRUE(c.send(deep));
    const auto error = parse_bounded(c.receive().value_or("{}"));
    EXPECT_EQ(string_member(error, "type"), "error");
    EXPECT_EQ(string_member(error, "code"), "bad_request");
    EXPECT_NE(string_member(error, "message").find("nested too deeply"), std::string::npos);
    expect_alive();
    ws_client over;
    ASSERT_EQ(over.connect(port_, "/v1/realtime?token=" + staff_token()), 101);
    ASSERT_TRUE(over.receive().has_value());
    over.send(std::string(2097152 + 1, '['));
    EXPECT_EQ(over.wait_closed(), 1009);  // message too big
    expect_alive();
  }
  {  // The guests' web chat: 64 KiB frames.
    ws_client c;
    ASSERT_EQ(c.connect(port_, "/v1/webchat"), 101);
    ASSERT_TRUE(c.receive().has_value());  // welcome
    ASSERT_TRUE(c.send(std::string(64 * 1024, '[')));
    const auto error = parse_bounded(c.receive().value_or("{}"));
    EXPECT_EQ(string_member(error, "type"), "error");
    EXPECT_EQ(string_member(error, "code"), "malformed");
    expect_alive();
    ws_client over;
    ASSERT_EQ(over.connect(port_, "/v1/webchat"), 101);
    ASSERT_TRUE(over.receive().has_value());
    over.send(deep);
    EXPECT_TRUE(over.wait_closed().has_value());  // the socket ends (docs/webchat.md)
    expect_alive();
  }
}

TEST_F(UntrustedJson, PoisonInTheOutboundQueuesIsDeadLetteredCountedAndTheLoopGoesOn) {
  start_bellhop();
  const auto kinds =
      poisons(R"({"property_id":"hotel-berlin","channel":"whatsapp","to":42,"text":["x"]})");
  // Intake: outbound:whatsapp.
  for (const auto& p : kinds) plant({"LPUSH", "outbound:whatsapp", p.element});
  plant(
      {"LPUSH", "outbound:whatsapp",
       R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915100000001","text":"ok"})"});
  ASSERT_TRUE(eventually([&] { return graph_.count() == 1; })) << bellhop_.output();
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "4"; }));
  for (const auto& p : kinds) {
    SCOPED_TRACE(p.reason);
    EXPECT_EQ(poison_count("outbound", p.reason), 1);
  }
  // Each dead letter says why.
  for (int i = 0; i < 4; ++i) {
    auto letter = parse_bounded(redis_.cli("LINDEX outbound:whatsapp:dead " + std::to_string(i)));
    EXPECT_NE(string_member(letter, "reason"), "");
  }

  // Dispatch: the ready and delayed sets (what an element filed there is read back as).
  plant({"ZADD", "outbound:whatsapp:ready", "1", million_deep()});
  plant({"ZADD", "outbound:whatsapp:delayed", "1", "{\"id\":\"\xff\"}"});
  plant(
      {"LPUSH", "outbound:whatsapp",
       R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915100000002","text":"ok"})"});
  ASSERT_TRUE(eventually([&] { return graph_.count() == 2; })) << bellhop_.output();
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "6"; }));
  EXPECT_EQ(poison_count("outbound", "too_deep"), 2);
  EXPECT_EQ(poison_count("outbound", "invalid_utf8"), 2);
  EXPECT_NE(redis_.cli("LINDEX outbound:whatsapp:dead 0").find("unreadable message"),
            std::string::npos);
  expect_alive();
}

TEST_F(UntrustedJson, PoisonReadFromInboundListsWebChatOutboxesAndHistoryIsSkippedAndCounted) {
  start_bellhop();
  // A dead consumer's processing list (max_deliveries 1: straight to the dead list).
  const auto kinds = poisons(R"({"id":7,"property_id":["hotel-berlin"]})");
  for (const auto& p : kinds) plant({"LPUSH", "inbound:messages:processing:ghost", p.element});
  plant({"SADD", "inbound:messages:consumers", "ghost"});
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN inbound:messages:dead") == "4"; }))
      << bellhop_.output();
  for (const auto& p : kinds) {
    SCOPED_TRACE(p.reason);
    EXPECT_TRUE(eventually([&] { return poison_count("inbound", p.reason) == 1; }))
        << http_get(port_, "/metrics").body;
  }

  // The oldest message of inbound:messages, read for the age gauge on every tick: counted once.
  plant({"RPUSH", "inbound:messages", million_deep()});
  ASSERT_TRUE(eventually([&] { return poison_count("inbound_oldest", "too_deep") == 1; }));
  // A good message still goes in.
  const auto good = post("/v1/messages/inbound",
                         R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
                         R"("external_id":"ext-1","from":"+4915100000003","text":"hello"})",
                         {{"Authorization", "Bearer " + adapter_key}});
  ASSERT_EQ(good.status, 202) << good.body;
  EXPECT_EQ(poison_count("inbound_oldest", "too_deep"), 1);

  // The conversation's recent messages: poison is skipped, the good message is served.
  const auto cid =
      string_member(parse_bounded(redis_.cli("LINDEX inbound:messages 0")), "conversation_id");
  ASSERT_FALSE(cid.empty());
  plant({"LPUSH", "conversation:" + cid + ":messages", million_deep()});
  const auto page = http_request(port_, "GET", "/v1/conversations/" + cid + "/messages", "",
                                 {{"Authorization", "Bearer " + staff_token()}});
  ASSERT_EQ(page.status, 200) << page.body;
  auto messages = parse_bounded(page.body);
  ASSERT_TRUE(messages.IsObject() && messages["messages"].IsArray()) << page.body;
  EXPECT_EQ(messages["messages"].Size(), 1u) << page.body;
  EXPECT_EQ(poison_count("conversation_messages", "too_deep"), 1);

  // A web-chat guest's outbox: poison goes to webchat:dead; the good reply is shown.
  ws_client guest;
  ASSERT_EQ(guest.connect(port_, "/v1/webchat"), 101);
  auto welcome = parse_bounded(guest.receive().value_or("{}"));
  const auto session = string_member(welcome, "session");
  const auto name = string_member(welcome, "guest");
  guest.close();
  plant({"HSET", "webchat:" + name + ":outbox", "01AAAAAAAAAAAAAAAAAAAAAAAA", million_deep()});
  plant({"HSET", "webchat:" + name + ":outbox", "01AAAAAAAAAAAAAAAAAAAAAAAB",
         R"({"type":"message","id":"01AAAAAAAAAAAAAAAAAAAAAAAB","text":"held reply"})"});
  ws_client back;
  ASSERT_EQ(back.connect(port_, "/v1/webchat?session=" + session), 101);
  ASSERT_TRUE(back.receive().has_value());  // welcome
  const auto shown = parse_bounded(back.receive().value_or("{}"));
  EXPECT_EQ(string_member(shown, "text"), "held reply");
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN webchat:dead") == "1"; }));
  auto letter = parse_bounded(redis_.cli("LINDEX webchat:dead 0"));
  EXPECT_EQ(string_member(letter, "reason"), "too_deep");
  EXPECT_EQ(string_member(letter, "guest"), name);
  EXPECT_EQ(redis_.cli("HEXISTS webchat:" + name + ":outbox 01AAAAAAAAAAAAAAAAAAAAAAAA"), "0");
  EXPECT_EQ(poison_count("webchat_outbox", "too_deep"), 1);

  // A property's event history, replayed for a dashboard's `since`: poison is skipped.
  char ts[32];
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  auto event = [&](int seq) {
    return R"({"seq":)" + std::to_string(seq) +
           R"(,"property_id":"hotel-h","event":"note","data":{},"ts":")" + ts + "\"}";
  };
  plant({"XADD", "property:hotel-h:events", "1-0", "event", event(1)});
  plant({"XADD", "property:hotel-h:events", "2-0", "event", million_deep()});
  plant({"XADD", "property:hotel-h:events", "3-0", "event", "{\"seq\":3,\"x\":\"\xff\"}"});
  plant({"XADD", "property:hotel-h:events", "4-0", "event", event(4)});
  plant({"SET", "property:hotel-h:seq", "4"});
  ws_client dashboard;
  ASSERT_EQ(
      dashboard.connect(port_, "/v1/realtime?token=" + contract::mint_staff_token(
                                                           jwt_secret, "frontdesk", {"hotel-h"},
                                                           std::chrono::system_clock::now(), 1h)),
      101);
  ASSERT_TRUE(dashboard.receive().has_value());  // welcome
  ASSERT_TRUE(dashboard.send(R"({"type":"subscribe","property_id":"hotel-h","since":0})"));
  std::vector<std::string> seqs;
  for (int i = 0; i < 10 && seqs.size() < 2; ++i) {
    auto f = dashboard.receive(5s);
    if (!f) break;
    auto d = parse_bounded(*f);
    if (!d.HasMember("type"))
      seqs.push_back("unreadable");
    else if (string_member(d, "type") == "event" && d.HasMember("seq") && d["seq"].IsUint64())
      seqs.push_back(std::to_string(d["seq"].GetUint64()));
  }
  EXPECT_EQ(seqs, (std::vector<std::string>{"1", "4"}));
  EXPECT_EQ(poison_count("event_history", "too_deep"), 1);
  EXPECT_EQ(poison_count("event_history", "invalid_utf8"), 1);
  expect_alive();
}

TEST_F(UntrustedJson, EventsNotInBellhopsLayoutAreSkippedAndCountedFromHistoryAndLive) {
  start_bellhop();
  char ts[32];
  const auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  auto event = [&](int seq, const std::string& property) {
    return R"({"seq":)" + std::to_string(seq) + R"(,"property_id":")" + property +
           R"(","event":"note","data":{"n":)" + std::to_string(seq) + R"(},"ts":")" + ts + "\"}";
  };
  const std::string key = "property:hotel-berlin:events";
  plant({"XADD", key, "1-0", "event", event(1, "hotel-berlin")});
  plant({"XADD", key, "2-0", "event", event(2, "hotel-paris")});    // another property's
  plant({"XADD", key, "3-0", "event", event(30, "hotel-berlin")});  // under another seq
  plant({"XADD", key, "4-0", "event",                               // JSON, not the layout
         R"({"seq":4,"property_id":"hotel-berlin","event":"note","data":{},"ts":"x","n":1})"});
  plant({"XADD", key, "5-0", "event", event(5, "hotel-berlin")});
  plant({"SET", "property:hotel-berlin:seq", "5"});
  ws_client dashboard;
  ASSERT_EQ(dashboard.connect(port_, "/v1/realtime?token=" + staff_token()), 101);
  ASSERT_TRUE(dashboard.receive().has_value());  // welcome
  ASSERT_TRUE(dashboard.send(R"({"type":"subscribe","property_id":"hotel-berlin","since":0})"));
  std::vector<std::string> frames;
  for (int i = 0; i < 10 && frames.size() < 2; ++i) {
    auto f = dashboard.receive(5s);
    if (!f) break;
    if (string_member(parse_bounded(*f), "type") == "event") frames.push_back(*f);
  }
  // Dashboards get the stored event with "type" in front, byte for byte.
  EXPECT_EQ(frames,
            (std::vector<std::string>{R"({"type":"event",)" + event(1, "hotel-berlin").substr(1),
                                      R"({"type":"event",)" + event(5, "hotel-berlin").substr(1)}));
  EXPECT_EQ(poison_count("event_history", "invalid"), 3);

  // Live: another property's event keeps its seq (no wait for it from history), the next comes.
  plant({"PUBLISH", "property:hotel-berlin:conversations", event(6, "hotel-paris")});
  plant({"PUBLISH", "property:hotel-berlin:conversations", event(7, "hotel-berlin")});
  const auto f = dashboard.receive(5s);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, R"({"type":"event",)" + event(7, "hotel-berlin").substr(1));
  EXPECT_EQ(poison_count("event_history", "invalid"), 4);
  expect_alive();
}

TEST_F(UntrustedJson, BellhopStartedWithPoisonPlantedComesUpAndStaysUp) {
  // Poison everywhere before the first start: the queues, the ready set, the processing list of
  // a Bellhop process that died (recovered at start), a dead engine's processing list.
  for (const auto& p : poisons(R"({"property_id":"hotel-berlin","to":[],"text":{}})")) {
    plant({"LPUSH", "outbound:whatsapp", p.element});
    plant({"ZADD", "outbound:whatsapp:ready", "1", p.element + " "});
    plant({"LPUSH", "outbound:whatsapp:processing:gone-1-AAAA", p.element + "  "});
    plant({"LPUSH", "inbound:messages:processing:ghost", p.element});
  }
  plant({"ZADD", "outbound:gateways", "1", "gone-1-AAAA"});
  plant({"SADD", "inbound:messages:consumers", "ghost"});
  plant({"RPUSH", "inbound:messages", million_deep()});

  for (int run = 0; run < 2; ++run) {
    SCOPED_TRACE("start " + std::to_string(run + 1));
    start_bellhop();
    plant({"LPUSH", "outbound:whatsapp",
           R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915100000004",)"
           R"("text":"after the poison"})"});
    ASSERT_TRUE(eventually([&] { return graph_.count() == static_cast<std::size_t>(run + 1); }))
        << bellhop_.output();
    ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "12"; }))
        << redis_.cli("LLEN outbound:whatsapp:dead") << bellhop_.output();
    EXPECT_EQ(redis_.cli("LLEN inbound:messages:dead"), "4");
    expect_alive();
    bellhop_.signal(SIGTERM);
    ASSERT_TRUE(bellhop_.wait(20s).has_value());
  }
}

}  // namespace
}  // namespace bellhop::test
