// GET /v1/realtime end to end: real bellhop processes, real redis-server, real WebSocket clients.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

const std::string adapter_key = "realtime-test-adapter-key-0123456789";
const std::string jwt_secret = "realtime-test-jwt-secret-0123456789abcdef";

rapidjson::Document parse(const std::string& text) { return parse_json(text); }
std::string str(const rapidjson::Value& v, const char* name) { return string_member(v, name); }

std::string token(std::vector<std::string> properties, std::chrono::seconds ttl = 1h,
                  const std::string& secret = jwt_secret,
                  sys_clock::time_point now = sys_clock::now()) {
  return contract::mint_staff_token(secret, "alice", properties, now, ttl);
}

class RealtimeProcess : public ::testing::Test {
 protected:
  // `realtime`, `inbound`: more members for those objects, e.g. "\"send_queue_bytes\": 1000";
  // `top`: more top-level members.
  child_process start_bellhop(const std::string& realtime = "", const std::string& inbound = "",
                              const std::string& top = "") {
    const auto port = free_port();
    ports_.push_back(port);
    const auto config = dir_.path() / ("config-" + std::to_string(port) + ".json");
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port << R"(",
      "data_dir": ")" << (dir_.path() / ("data-" + std::to_string(port))).string()
                          << R"(",
      "redis": {"url": ")" << redis_.url()
                          << R"(", "command_timeout_ms": 1000},
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]}],
               "jwt_secret": ")"
                          << jwt_secret << R"("},
      "inbound": {)" << inbound
                          << R"(},)" << (top.empty() ? "" : top + ",") << R"(
      "realtime": {"auth_timeout_ms": 500)"
                          << (realtime.empty() ? "" : ", " + realtime) << R"(}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(port) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }

  // Posts n guest messages for `property` from `clients` connections at once; returns the ids.
  void post_messages(int n, const std::string& property = "hotel-berlin", int clients = 8,
                     std::size_t bellhop = 0) {
    std::atomic<int> next{0}, failures{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        http_connection conn(port(bellhop));
        for (int i = next++; i < n; i = next++) {
          const auto r = conn.request(
              "POST", "/v1/messages/inbound",
              R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":"ext-)" +
                  property + "-" + std::to_string(posted_ + i) + R"(","from":"+49151)" +
                  std::to_string(c) + R"(","text":"hello )" + std::to_string(i) + "\"}",
              {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
          if (r.status != 202) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    posted_ += n;
    EXPECT_EQ(failures.load(), 0);
  }

  // Connects with a token in the URL and reads the welcome frame.
  std::unique_ptr<ws_client> dashboard(const std::vector<std::string>& properties,
                                       std::size_t bellhop = 0) {
    auto c = std::make_unique<ws_client>();
    EXPECT_EQ(c->connect(port(bellhop), "/v1/realtime?token=" + token(properties)), 101);
    auto welcome = c->receive();
    EXPECT_TRUE(welcome.has_value());
    if (welcome) {
      EXPECT_EQ(str(parse(*welcome), "type"), "welcome") << *welcome;
    }
    return c;
  }

  // Subscribes and returns the `subscribed` frame.
  rapidjson::Document subscribe(ws_client& c, const std::string& property,
                                std::optional<std::uint64_t> since = std::nullopt) {
    EXPECT_TRUE(c.send(R"({"type":"subscribe","property_id":")" + property + "\"" +
                       (since ? ",\"since\":" + std::to_string(*since) : "") + "}"));
    auto f = c.receive();
    EXPECT_TRUE(f.has_value());
    auto d = parse(f.value_or("{}"));
    EXPECT_EQ(str(d, "type"), "subscribed") << f.value_or("(none)");
    return d;
  }

  // Reads n event frames and checks their seqs are from, from+1, …; returns the last seq.
  std::uint64_t expect_events(ws_client& c, std::uint64_t from, int n) {
    std::uint64_t expected = from;
    for (int i = 0; i < n; ++i) {
      auto f = c.receive();
      if (!f) {
        ADD_FAILURE() << "no event after seq " << expected - 1 << " (" << i << " of " << n << ")";
        return expected - 1;
      }
      auto d = parse(*f);
      if (str(d, "event") == "presence" || str(d, "event") == "typing") {
        --i;  // ephemeral, no seq: other dashboards coming and going
        continue;
      }
      if (str(d, "type") != "event" || !d.HasMember("seq") || !d["seq"].IsUint64()) {
        ADD_FAILURE() << "not an event: " << *f;
        return expected - 1;
      }
      if (d["seq"].GetUint64() != expected) {
        ADD_FAILURE() << "seq " << d["seq"].GetUint64() << ", expected " << expected;
        return expected - 1;
      }
      ++expected;
    }
    return expected - 1;
  }

  temp_dir dir_;
  redis_server redis_{{}, /*durable=*/true};
  std::vector<std::uint16_t> ports_;
  int posted_ = 0;
};

TEST_F(RealtimeProcess, TokensAreCheckedBeforeAnyEventFlows) {
  auto bellhop = start_bellhop();
  {
    ws_client c;  // bad signature
    EXPECT_EQ(c.connect(port(), "/v1/realtime?token=" +
                                    token({"*"}, 1h, "another-secret-0123456789abcdef")),
              401);
    EXPECT_EQ(str(parse(c.refusal_body())["error"], "code"), "unauthorized");
  }
  {
    ws_client c;  // expired
    EXPECT_EQ(c.connect(port(), "/v1/realtime?token=" +
                                    token({"*"}, 60s, jwt_secret, sys_clock::now() - 2min)),
              401);
    EXPECT_NE(c.refusal_body().find("expired"), std::string::npos) << c.refusal_body();
  }
  {
    ws_client c;  // none: no token in the URL and no auth frame within auth_timeout_ms
    ASSERT_EQ(c.connect(port(), "/v1/realtime"), 101);
    auto err = c.receive(3s);
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(str(parse(*err), "code"), "unauthorized") << *err;
    EXPECT_EQ(c.wait_closed(), 4401);
  }
  {
    ws_client c;  // a first frame that is not auth
    ASSERT_EQ(c.connect(port(), "/v1/realtime"), 101);
    c.send(R"({"type":"subscribe","property_id":"hotel-berlin"})");
    auto err = c.receive();
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(str(parse(*err), "code"), "unauthorized");
    EXPECT_EQ(c.wait_closed(), 4401);
  }
  {
    ws_client c;  // auth frame with a good token, then a property outside the claim
    ASSERT_EQ(c.connect(port(), "/v1/realtime"), 101);
    c.send(R"({"type":"auth","token":")" + token({"hotel-berlin"}) + "\"}");
    auto welcome = c.receive();
    ASSERT_TRUE(welcome.has_value());
    EXPECT_EQ(str(parse(*welcome), "type"), "welcome") << *welcome;
    c.send(R"({"type":"subscribe","property_id":"hotel-paris"})");
    auto err = c.receive();
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(str(parse(*err), "code"), "forbidden") << *err;
    post_messages(3, "hotel-paris", 1);
    EXPECT_FALSE(c.receive(500ms).has_value()) << "no event of a property outside the token";
  }
  // A plain GET is told to upgrade.
  EXPECT_EQ(http_get(port(), "/v1/realtime").status, 426);
}

TEST_F(RealtimeProcess, AnInBandRefreshKeepsCoveredSubscriptionsAndEndsTheOthersWithAFrame) {
  auto bellhop = start_bellhop();
  auto c = dashboard({"hotel-berlin", "hotel-paris"});
  subscribe(*c, "hotel-berlin");
  subscribe(*c, "hotel-paris");

  // Another staff member's token is refused and changes nothing.
  ASSERT_TRUE(c->send(R"({"type":"auth","token":")" +
                      contract::mint_staff_token(jwt_secret, "bob", {"*"}, sys_clock::now(), 1h) +
                      "\"}"));
  auto refused = parse(c->receive().value_or("{}"));
  EXPECT_EQ(str(refused, "code"), "unauthorized");
  EXPECT_EQ(str(refused, "ref"), "auth");

  // A narrower token for the same sub: a new welcome, then the end of hotel-paris.
  ASSERT_TRUE(c->send(R"({"type":"auth","token":")" + token({"hotel-berlin"}, 2h) + "\"}"));
  auto welcome = parse(c->receive().value_or("{}"));
  EXPECT_EQ(str(welcome, "type"), "welcome");
  EXPECT_EQ(str(welcome, "sub"), "alice");
  auto ended = parse(c->receive().value_or("{}"));
  EXPECT_EQ(str(ended, "type"), "error");
  EXPECT_EQ(str(ended, "code"), "subscription_ended");
  EXPECT_EQ(str(ended, "ref"), "auth");
  EXPECT_EQ(str(ended, "property_id"), "hotel-paris");

  post_messages(1, "hotel-paris", 1);
  post_messages(1, "hotel-berlin", 1);
  auto next = parse(c->receive().value_or("{}"));
  EXPECT_EQ(str(next, "property_id"), "hotel-berlin") << "nothing more of hotel-paris";
  EXPECT_EQ(str(next, "event"), "message.created");

  ASSERT_TRUE(c->send(R"({"type":"subscribe","property_id":"hotel-paris"})"));
  EXPECT_EQ(str(parse(c->receive().value_or("{}")), "code"), "forbidden");
}

TEST_F(RealtimeProcess, TenThousandEventsArriveInOrderWithConsecutiveSeq) {
  auto bellhop = start_bellhop();
  auto c = dashboard({"hotel-berlin"});
  auto sub = subscribe(*c, "hotel-berlin");
  EXPECT_EQ(sub["seq"].GetUint64(), 0u);
  EXPECT_TRUE(sub["recovered"].GetBool());
  std::thread producer([&] { post_messages(10000, "hotel-berlin", 16); });
  EXPECT_EQ(expect_events(*c, 1, 10000), 10000u);
  producer.join();
  EXPECT_FALSE(c->receive(300ms).has_value()) << "nothing more, nothing twice";
}

TEST_F(RealtimeProcess, ReconnectWithSinceGetsEveryMissedEventOnceThenLive) {
  auto bellhop = start_bellhop();
  auto c = dashboard({"hotel-berlin"});
  subscribe(*c, "hotel-berlin");
  post_messages(100);
  ASSERT_EQ(expect_events(*c, 1, 100), 100u);
  c->drop();  // Wi-Fi gone
  // 500 events while away (over 2 s), and more while it comes back.
  std::thread away([&] {
    for (int i = 0; i < 5; ++i) {
      post_messages(100, "hotel-berlin", 4);
      std::this_thread::sleep_for(400ms);
    }
  });
  away.join();
  std::thread during([&] { post_messages(300, "hotel-berlin", 4); });
  auto back = dashboard({"hotel-berlin"});
  auto sub = subscribe(*back, "hotel-berlin", 100);
  EXPECT_TRUE(sub["recovered"].GetBool());
  during.join();
  EXPECT_EQ(expect_events(*back, 101, 800), 900u);
  EXPECT_FALSE(back->receive(300ms).has_value()) << "no duplicate at the seam";
}

TEST_F(RealtimeProcess, SinceOlderThanHistoryIsNotRecovered) {
  auto bellhop = start_bellhop("", R"("history_max": 100)");
  post_messages(1000);
  auto c = dashboard({"*"});
  auto sub = subscribe(*c, "hotel-berlin", 3);
  EXPECT_FALSE(sub["recovered"].GetBool());
  EXPECT_EQ(sub["seq"].GetUint64(), 1000u);
  post_messages(5);
  EXPECT_EQ(expect_events(*c, 1001, 5), 1005u) << "live from the current seq on";

  // A since still in history replays from there.
  auto d = dashboard({"*"});
  auto recent = subscribe(*d, "hotel-berlin", 995);
  EXPECT_TRUE(recent["recovered"].GetBool());
  EXPECT_EQ(expect_events(*d, 996, 10), 1005u);
}

// Resident memory of a process in KiB (VmRSS).
long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

TEST_F(RealtimeProcess, AReaderThatStopsIsClosedAndTheOthersGetEverything) {
  auto bellhop = start_bellhop(R"("send_queue_bytes": 262144)");
  ws_client stuck(/*reading=*/false, /*receive_buffer=*/4096);
  ASSERT_EQ(stuck.connect(port(), "/v1/realtime?token=" + token({"*"})), 101);
  stuck.send(R"({"type":"subscribe","property_id":"hotel-berlin"})");
  std::vector<std::unique_ptr<ws_client>> others;
  for (int i = 0; i < 100; ++i) {
    others.push_back(dashboard({"hotel-berlin"}));
    subscribe(*others.back(), "hotel-berlin");
  }
  [[maybe_unused]] const long rss_before = rss_kib(bellhop.pid());
  // 300 events/s for 5 s, each to 101 dashboards (30,000 frames/s): a steady load the healthy
  // ones keep up with on a busy 2-core machine, while the stuck one falls 825 KB behind.
  for (int burst = 0; burst < 50; ++burst) {
    post_messages(30, "hotel-berlin", 2);
    std::this_thread::sleep_for(100ms);
  }
  for (auto& o : others) ASSERT_EQ(expect_events(*o, 1, 1500), 1500u) << bellhop.output();
  // The stuck dashboard cost at most its queue limit; 1,500 events to 101 sessions are
  // shared frames, not 101 copies.
#ifndef __SANITIZE_ADDRESS__
  // (Not under AddressSanitizer: its quarantine keeps freed memory resident by design, up to
  // 256 MiB. The Release build of the same suite checks the bound.)
  EXPECT_LT(rss_kib(bellhop.pid()) - rss_before, 32 * 1024) << "KiB";
#endif
  EXPECT_TRUE(eventually([&] {
    const auto m = http_get(port(), "/metrics").body;
    return m.find("bellhop_realtime_slow_closed_total 1\n") != std::string::npos &&
           m.find("bellhop_realtime_sessions 100\n") != std::string::npos;
  })) << "the stuck dashboard alone is closed\n"
      << http_get(port(), "/metrics").body;
}

TEST_F(RealtimeProcess, PresenceAndTypingReachTheOtherDashboardsOnly) {
  auto bellhop = start_bellhop();
  auto a = dashboard({"hotel-berlin"});
  subscribe(*a, "hotel-berlin");
  auto b = dashboard({"*"});
  subscribe(*b, "hotel-berlin");
  auto joined = a->receive();
  ASSERT_TRUE(joined.has_value());
  auto j = parse(*joined);
  EXPECT_EQ(str(j, "event"), "presence") << *joined;
  EXPECT_EQ(str(j["data"], "status"), "joined");
  EXPECT_EQ(str(j["data"], "sub"), "alice");
  EXPECT_FALSE(j.HasMember("seq")) << "ephemeral events carry no seq";
  const std::string b_session = str(j["data"], "session_id");
  EXPECT_EQ(redis_.cli("ZCARD property:hotel-berlin:presence"), "2");
  const auto online = http_request(port(), "GET", "/v1/properties/hotel-berlin/presence", "",
                                   {{"Authorization", "Bearer " + token({"hotel-berlin"})}});
  ASSERT_EQ(online.status, 200) << online.body;
  auto who = parse(online.body);
  ASSERT_TRUE(who["staff"].IsArray()) << online.body;
  ASSERT_EQ(who["staff"].Size(), 1u) << online.body;
  EXPECT_EQ(str(who["staff"][0], "sub"), "alice");
  EXPECT_EQ(who["staff"][0]["sessions"].Size(), 2u) << online.body;
  EXPECT_EQ(http_request(port(), "GET", "/v1/properties/hotel-paris/presence", "",
                         {{"Authorization", "Bearer " + token({"hotel-berlin"})}})
                .status,
            403);
  EXPECT_EQ(http_get(port(), "/v1/properties/hotel-berlin/presence").status, 401);
  EXPECT_EQ(redis_.cli("HGET session:" + b_session + " sub"), "alice");

  b->send(
      R"({"type":"typing","property_id":"hotel-berlin","conversation_id":"c_0123456789abcdef0123456789abcdef"})");
  auto typing = a->receive();
  ASSERT_TRUE(typing.has_value());
  EXPECT_EQ(str(parse(*typing), "event"), "typing") << *typing;
  EXPECT_FALSE(b->receive(300ms).has_value()) << "not echoed to the typist";

  b->close();
  auto left = a->receive();
  ASSERT_TRUE(left.has_value());
  EXPECT_EQ(str(parse(*left)["data"], "status"), "left") << *left;
  EXPECT_TRUE(
      eventually([&] { return redis_.cli("ZCARD property:hotel-berlin:presence") == "1"; }));
  EXPECT_EQ(redis_.cli("EXISTS session:" + b_session), "0");
}

TEST_F(RealtimeProcess, AReplySentTwiceIsQueuedOnce) {
  auto bellhop = start_bellhop();
  post_messages(1, "hotel-berlin", 1);  // from +491510
  auto c = dashboard({"hotel-berlin"});
  subscribe(*c, "hotel-berlin", 0);
  auto created = c->receive();
  ASSERT_TRUE(created.has_value());
  auto ev = parse(*created);
  const std::string conversation = str(ev["data"], "conversation_id");
  ASSERT_EQ(conversation.size(), 34u) << *created;

  const std::string reply = R"({"type":"reply","property_id":"hotel-berlin","conversation_id":")" +
                            conversation +
                            R"(","text":"Breakfast is at 7.","client_msg_id":"m-1"})";
  ASSERT_TRUE(c->send(reply));
  ASSERT_TRUE(c->send(reply));  // a double tap
  std::vector<std::string> ack_ids;
  int events = 0;
  for (int i = 0; i < 3; ++i) {  // two acks and one message.created for the reply
    auto f = c->receive();
    ASSERT_TRUE(f.has_value());
    auto d = parse(*f);
    if (str(d, "type") == "ack") {
      EXPECT_EQ(str(d, "client_msg_id"), "m-1");
      ack_ids.push_back(str(d, "id"));
    } else {
      EXPECT_EQ(str(d, "event"), "message.created") << *f;
      EXPECT_EQ(str(d["data"], "direction"), "outbound") << *f;
      ++events;
    }
  }
  ASSERT_EQ(ack_ids.size(), 2u);
  EXPECT_EQ(ack_ids[0], ack_ids[1]);
  EXPECT_EQ(events, 1);
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "1");
  auto queued = parse(redis_.cli("LINDEX outbound:whatsapp 0"));
  EXPECT_EQ(str(queued, "id"), ack_ids[0]);
  EXPECT_EQ(str(queued, "to"), "+491510");
  EXPECT_EQ(str(queued, "text"), "Breakfast is at 7.");
  EXPECT_EQ(str(queued, "sent_by"), "alice");
  EXPECT_EQ(str(queued, "reply_to"), str(ev["data"], "id")) << "the guest's latest message";

  // Bad replies are error frames naming the field, and nothing is queued.
  c->send(
      R"({"type":"reply","property_id":"hotel-berlin","conversation_id":"c_nope","text":"x","client_msg_id":"m-2"})");
  auto err = c->receive();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(str(parse(*err), "code"), "invalid_field") << *err;
  c->send(
      R"({"type":"reply","property_id":"hotel-berlin","conversation_id":"c_0123456789abcdef0123456789abcdef","text":"x","client_msg_id":"m-3"})");
  err = c->receive();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(str(parse(*err), "code"), "not_found") << *err;
  c->send("{not json");
  err = c->receive();
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(str(parse(*err), "code"), "bad_request") << *err;
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "1");
}

TEST_F(RealtimeProcess, EventsReachDashboardsOfAnotherProcessWithTheSameSeq) {
  auto first = start_bellhop();
  auto second = start_bellhop();
  auto a = dashboard({"hotel-berlin"}, 0);
  auto b = dashboard({"hotel-berlin"}, 1);
  subscribe(*a, "hotel-berlin");
  subscribe(*b, "hotel-berlin");
  post_messages(200, "hotel-berlin", 4, 0);
  post_messages(200, "hotel-berlin", 4, 1);
  EXPECT_EQ(expect_events(*a, 1, 400), 400u);
  EXPECT_EQ(expect_events(*b, 1, 400), 400u);
}

TEST_F(RealtimeProcess, RedisRestartKeepsDashboardsAndFillsTheGap) {
  auto bellhop = start_bellhop();
  auto c = dashboard({"hotel-berlin"});
  subscribe(*c, "hotel-berlin");
  post_messages(50);
  ASSERT_EQ(expect_events(*c, 1, 50), 50u);
  std::this_thread::sleep_for(1500ms);  // the AOF is fsynced every second
  redis_.restart();  // SIGKILL and start again on the same port: pub/sub is lost meanwhile
  ASSERT_TRUE(eventually([&] { return http_get(port(), "/readyz").status == 200; }, 20s));
  post_messages(50);
  EXPECT_EQ(expect_events(*c, 51, 50), 100u);
}

}  // namespace
}  // namespace bellhop::test

namespace bellhop::test {
namespace {

TEST_F(RealtimeProcess, RepliesOverTheSessionsPolicyAreRefusedWithRetryAfterAndNotQueued) {
  auto bellhop = start_bellhop("", "", R"("ratelimit": {"policies": {"staff_reply":
      {"algorithm": "fixed_window", "limit": 2, "window_ms": 600000}}})");
  post_messages(1, "hotel-berlin", 1);
  auto c = dashboard({"hotel-berlin"});
  subscribe(*c, "hotel-berlin", 0);
  auto created = c->receive();
  ASSERT_TRUE(created.has_value());
  const std::string conversation = str(parse(*created)["data"], "conversation_id");
  auto reply = [&](const std::string& id) {
    return R"({"type":"reply","property_id":"hotel-berlin","conversation_id":")" + conversation +
           R"(","text":"On our way.","client_msg_id":")" + id + "\"}";
  };
  for (const auto* id : {"m-1", "m-2", "m-3"}) ASSERT_TRUE(c->send(reply(id)));
  std::set<std::string> acked;
  std::string refused;
  for (int i = 0; i < 10 && (acked.size() < 2 || refused.empty()); ++i) {
    auto f = c->receive();
    ASSERT_TRUE(f.has_value());
    auto d = parse(*f);
    if (str(d, "type") == "ack") acked.insert(str(d, "client_msg_id"));
    if (str(d, "type") == "error") {
      EXPECT_EQ(str(d, "code"), "rate_limited") << *f;
      ASSERT_TRUE(d.HasMember("retry_after_ms") && d["retry_after_ms"].IsInt64()) << *f;
      EXPECT_GT(d["retry_after_ms"].GetInt64(), 0) << *f;
      refused = str(d, "ref");
    }
  }
  EXPECT_EQ(acked.size(), 2u);
  EXPECT_FALSE(refused.empty());
  EXPECT_EQ(acked.count(refused), 0u);
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "2") << "the refused reply is not queued";

  // Per session: another dashboard of the same person still has its own allowance.
  auto other = dashboard({"hotel-berlin"});
  subscribe(*other, "hotel-berlin", 0);
  ASSERT_TRUE(other->send(reply("m-4")));
  bool ack = false;
  for (int i = 0; i < 10 && !ack; ++i) {
    auto f = other->receive();
    ASSERT_TRUE(f.has_value());
    ack = str(parse(*f), "type") == "ack";
  }
  EXPECT_TRUE(ack);
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "3");
}

}  // namespace
}  // namespace bellhop::test
