// The outbound sender end to end: real bellhop and redis-server processes, the WhatsApp Graph
// API played by a local fake provider on loopback.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "bellhop/broker/broker.hpp"
#include "bellhop/outbound/lua.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

fake_response graph_ok(std::size_t index) {
  return {200, R"({"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],)"
               R"("messages":[{"id":"wamid.)" +
                   std::to_string(index) + R"("}]})"};
}

std::string reply(const std::string& to, const std::string& text, int priority = 5,
                  const std::string& extra = "") {
  return R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + to +
         R"(","text":")" + text + R"(","priority":)" + std::to_string(priority) + extra + "}";
}

class OutboundProcess : public ::testing::Test {
 protected:
  // `outbound`, `policies`: JSON members of those config objects.
  // `top`: more top-level members ("\"properties\": […],"). The service window is off
  // (service_window_s 0): these tests are about the queues, whatever guest they write to
  // (service_window_process_test has the window).
  child_process start_bellhop(const redis_server& redis, const fake_provider& graph,
                              const std::string& outbound = "", const std::string& policies = "",
                              const std::string& top = "") {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{" << top
                          << bellhop_config_head(port_, dir_.path() / "data", redis.url(),
                                                 local_url(port_))
                          << R"(
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400)"
                          << (outbound.empty() ? "" : ", " + outbound) << R"(},
      "ratelimit": {"policies": {)"
                          << policies << R"(}},
      "auth": {"adapter_keys": [{"name": "all", "key": "outbound-test-key-0123456789",
                                  "properties": ["*"]}],
               "admin_token": "admin-token-0123456789"},
      "channels": {"whatsapp": {"app_secret": "app-secret", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "service_window_s": 0,
        "api_base_url": ")"
                          << graph.url() << R"(/v21.0"}}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  static std::string push(const redis_server& redis, const std::string& json) {
    return redis.cli("LPUSH outbound:whatsapp '" + json + "'");
  }
  static rapidjson::Document json(const std::string& s) {
    rapidjson::Document d;
    d.Parse(s.c_str());
    return d;
  }
  static std::string processing_lists(const redis_server& redis) {
    return redis.cli("--scan --pattern 'outbound:whatsapp:processing:*'");
  }
  // Messages in all processing lists together.
  static int in_flight(const redis_server& redis) {
    int n = 0;
    std::istringstream keys(processing_lists(redis));
    for (std::string key; std::getline(keys, key);)
      if (!key.empty()) n += std::stoi(redis.cli("LLEN " + key));
    return n;
  }

  // Files `n` messages to distinct guests (+<prefix><10000001…>, text `text`) while the
  // channel is paused, and waits until all are ready: sent all at once on resume.
  static bool file_paused(const redis_server& redis, int n, const std::string& prefix,
                          const std::string& text) {
    redis.cli("SET outbound:whatsapp:paused 1");
    // redis-cli's quoting: \" inside the EVAL's double quotes.
    const std::string element =
        R"({\"property_id\":\"hotel-berlin\",\"channel\":\"whatsapp\",\"to\":\"+)" + prefix +
        R"(' .. (10000000 + i) .. '\",\"text\":\")" + text + R"(\"})";
    redis.cli("EVAL \"for i = 1, " + std::to_string(n) + " do redis.call('LPUSH', KEYS[1], '" +
              element + "') end\" 1 outbound:whatsapp");
    return eventually(
        [&] { return redis.cli("ZCARD outbound:whatsapp:ready") == std::to_string(n); }, 60s);
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(OutboundProcess, AMessagePushedByAnEngineReachesTheGraphApiAndIsRecordedSent) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  push(redis, reply("+4915112345678", "Breakfast is 7-10.", 5,
                    R"(,"conversation_id":"c_0123456789abcdef0123456789abcdef")"));
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 10s)) << bellhop.output();
  const auto r = graph.requests()[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/v21.0/1234/messages");
  EXPECT_EQ(r.headers.at("authorization"), "Bearer graph-token");
  auto body = json(r.body);
  ASSERT_TRUE(body.IsObject()) << r.body;
  EXPECT_STREQ(body["to"].GetString(), "4915112345678");
  EXPECT_STREQ(body["text"]["body"].GetString(), "Breakfast is 7-10.");

  // Recorded: status sent with the provider's id, mapped back for status callbacks.
  ASSERT_TRUE(eventually([&] { return redis.cli("GET outbound:whatsapp:provider:wamid.0") != ""; },
                         5s));
  const auto id = redis.cli("GET outbound:whatsapp:provider:wamid.0");
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "sent");
  EXPECT_EQ(redis.cli("HGET message:" + id + " provider_message_id"), "wamid.0");
  EXPECT_EQ(redis.cli("HGET outbound:whatsapp:stats sent"), "1");
  EXPECT_EQ(redis.cli("LLEN outbound:whatsapp"), "0");
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");
  EXPECT_EQ(in_flight(redis), 0);
  // The dashboards' history has the message.status event.
  const auto history = redis.cli("XRANGE property:hotel-berlin:events - +");
  EXPECT_NE(history.find(R"("event":"message.status")"), std::string::npos) << history;
  EXPECT_NE(history.find(R"("status":"sent")"), std::string::npos) << history;
}

// "HH:MM" of a number of minutes after midnight, wrapped to a day.
std::string clock_time(long long minutes) {
  minutes = ((minutes % 1440) + 1440) % 1440;
  char text[6];
  std::snprintf(text, sizeof text, "%02lld:%02lld", minutes / 60, minutes % 60);
  return text;
}

TEST_F(OutboundProcess, QuietHoursHoldBulkMessagesButNotReplies) {
  // The property's quiet hours run from an hour ago to two hours from now, local time. Its zone,
  // Asia/Kolkata (UTC+05:30 all year, no daylight saving), lets the test place the window
  // without a tz library of its own and keeps the local time off the UTC hour.
  using std::chrono::duration_cast;
  using std::chrono::minutes;
  const auto utc_minutes =
      duration_cast<minutes>(std::chrono::system_clock::now().time_since_epoch()).count();
  const long long local = utc_minutes + 5 * 60 + 30;
  const std::string properties = R"("properties": [{"id": "hotel-berlin", "name": "Hotel Berlin",
      "time_zone": "Asia/Kolkata", "quiet_hours": {"start": ")" +
                                 clock_time(local - 60) + R"(", "end": ")" +
                                 clock_time(local + 120) + R"("}}],)";
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph, "", "", properties);

  // A campaign message (bulk, 7) first, then a guest's reply (2) and a default-priority one (5).
  push(redis, reply("+4915100000020", "Spa offer", 7));
  push(redis, reply("+4915100000021", "Your taxi is here", 2));
  push(redis, reply("+4915100000022", "Newsletter", 5));
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 10s)) << bellhop.output();
  EXPECT_NE(graph.requests()[0].body.find("Your taxi is here"), std::string::npos)
      << graph.requests()[0].body;

  // Both bulk messages wait in the delayed set until the quiet hours end, recorded as such.
  ASSERT_TRUE(eventually([&] { return redis.cli("ZCARD outbound:whatsapp:quiet") == "2"; }, 10s))
      << bellhop.output();
  const long long end_ms = (utc_minutes + 120) * 60000;  // the window's end, in UTC
  std::istringstream ids(redis.cli("ZRANGE outbound:whatsapp:quiet 0 -1"));
  int held = 0;
  for (std::string id; std::getline(ids, id);) {
    if (id.empty()) continue;
    ++held;
    EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "delayed");
    EXPECT_EQ(redis.cli("HGET message:" + id + " reason"), "quiet_hours");
    const auto due = std::stoll(redis.cli("ZSCORE outbound:whatsapp:quiet " + id));
    // The minute may have turned between the test's clock and the dispatcher's.
    EXPECT_TRUE(due == end_ms || due == end_ms + 60000) << due << " vs " << end_ms;
    EXPECT_FALSE(redis.cli("HGET message:" + id + " due_at").empty());
  }
  EXPECT_EQ(held, 2);
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:delayed"), "2");
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");

  // The dispatcher keeps claiming (every second at the latest): they stay held, not sent.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(graph.count(), 1u);
  const std::map<std::string, std::string> admin = {
      {"Authorization", "Bearer admin-token-0123456789"}};
  auto stats = http_request(port_, "GET", "/v1/admin/queues", "", admin);
  ASSERT_EQ(stats.status, 200) << stats.body;
  const auto doc = json(stats.body);
  const auto q = doc["queues"][0].GetObject();
  EXPECT_EQ(q["quiet"].GetInt(), 2) << stats.body;
  EXPECT_EQ(q["delayed"].GetInt(), 2) << stats.body;
  EXPECT_EQ(q["counters"]["quiet_held"].GetInt(), 2) << stats.body;
  const auto metrics = http_get(port_, "/metrics").body;
  EXPECT_NE(
      metrics.find(R"(bellhop_outbound_sends_total{channel="whatsapp",result="quiet_hours"} 2)"),
      std::string::npos)
      << metrics;

  // A reply queued during quiet hours still goes at once.
  push(redis, reply("+4915100000023", "Checkout is at 11", 4));
  ASSERT_TRUE(eventually([&] { return graph.count() == 2; }, 10s)) << bellhop.output();
  EXPECT_NE(graph.requests()[1].body.find("Checkout is at 11"), std::string::npos);
}

TEST_F(OutboundProcess, TwoServerErrorsThenSuccessIsSentOnceAfterBackoff) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) {
    return i < 2 ? fake_response{500, R"({"error":{"message":"temporary","code":2}})"}
                 : graph_ok(i);
  });
  auto bellhop = start_bellhop(redis, graph);
  push(redis, reply("+4915100000001", "retry me"));
  ASSERT_TRUE(eventually([&] { return graph.count() == 3; }, 10s)) << bellhop.output();
  std::this_thread::sleep_for(500ms);
  const auto reqs = graph.requests();
  EXPECT_EQ(reqs.size(), 3u) << "exactly one successful send";
  EXPECT_GE(reqs[1].at - reqs[0].at, 50ms) << "backoff between attempts";
  EXPECT_GE(reqs[2].at - reqs[1].at, 100ms) << "the backoff grows";
  const auto id = redis.cli("GET outbound:whatsapp:provider:wamid.2");
  ASSERT_FALSE(id.empty());
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "sent");
  EXPECT_EQ(redis.cli("HGET message:" + id + " attempts"), "3");
  EXPECT_EQ(redis.cli("HGET outbound:whatsapp:stats retried"), "2");
}

TEST_F(OutboundProcess, APermanentErrorGoesToTheDeadListWithTheReasonAndAFailedEvent) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t) {
    return fake_response{
        400, R"({"error":{"message":"(#100) Invalid parameter","type":"OAuthException","code":100}})"};
  });
  auto bellhop = start_bellhop(redis, graph);
  push(redis, reply("+4915100000002", "bad one"));
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "1"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(graph.count(), 1u) << "a permanent failure is not retried";
  auto dead = json(redis.cli("LINDEX outbound:whatsapp:dead 0"));
  ASSERT_TRUE(dead.IsObject());
  EXPECT_NE(std::string(dead["reason"].GetString()).find("Invalid parameter"), std::string::npos);
  EXPECT_STREQ(dead["message"]["text"].GetString(), "bad one");
  const std::string id = dead["message"]["id"].GetString();
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "failed");
  const auto history = redis.cli("XRANGE property:hotel-berlin:events - +");
  EXPECT_NE(history.find(R"("status":"failed")"), std::string::npos) << history;
}

TEST_F(OutboundProcess, AnInvalidElementIsDeadLetteredWithItsReasonAndOthersStillGo) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  push(redis, "not json");
  push(redis, R"({"property_id":"hotel-berlin","channel":"whatsapp","text":"no recipient"})");
  push(redis, reply("+4915100000003", "fine", 5, R"(,"channel":"whatsapp")"));
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 10s)) << bellhop.output();
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "2"; }, 5s));
  const auto dead = redis.cli("LRANGE outbound:whatsapp:dead 0 -1");
  EXPECT_NE(dead.find("not a JSON object"), std::string::npos) << dead;
  EXPECT_NE(dead.find("to is missing"), std::string::npos) << dead;
  EXPECT_EQ(redis.cli("HGET outbound:whatsapp:stats invalid"), "2");

  // A recipient WhatsApp cannot have fails at once, without a call to the Graph API.
  push(redis, reply("Room 412", "no such guest", 5, R"(,"channel":"whatsapp")"));
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "3"; }, 10s));
  EXPECT_NE(redis.cli("LRANGE outbound:whatsapp:dead 0 -1").find("neither a phone number"),
            std::string::npos);
  EXPECT_EQ(graph.count(), 1u);
}

TEST_F(OutboundProcess, OneIdempotencyKeyIsOneSendWhoeverRetries) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  for (int i = 0; i < 3; ++i)
    push(redis, reply("+4915100000004", "once", 5, R"(,"idempotency_key":"reply:01ABC")"));
  push(redis, reply("+4915100000004", "other", 5, R"(,"idempotency_key":"reply:01ABD")"));
  ASSERT_TRUE(eventually([&] { return graph.count() >= 2; }, 10s)) << bellhop.output();
  ASSERT_TRUE(eventually([&] { return redis.cli("HGET outbound:whatsapp:stats duplicates") == "2"; },
                         5s));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(graph.count(), 2u);
}

// A POST's delay_ms travels with the queued element (docs/outbound.md): the message waits in
// the delayed set, due delay_ms after it was posted at the earliest, and is sent then.
TEST_F(OutboundProcess, APostedDelayHoldsTheMessageBackThatLong) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  const std::map<std::string, std::string> key = {
      {"Authorization", "Bearer outbound-test-key-0123456789"},
      {"Content-Type", "application/json"}};
  const auto posted_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const auto r = http_request(port_, "POST", "/v1/messages/outbound",
                              reply("+4915100000010", "later", 5, R"(,"delay_ms":1500)"), key);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = json(r.body)["id"].GetString();
  std::size_t calls_before = 0;
  ASSERT_TRUE(eventually(
      [&] {
        calls_before = graph.count();  // read first: a delayed message is not sent yet
        return redis.cli("ZCARD outbound:whatsapp:delayed") == "1" || calls_before > 0;
      },
      10s))
      << bellhop.output();
  EXPECT_EQ(calls_before, 0u) << "sent without its delay";
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "queued");
  std::istringstream scored(redis.cli("ZRANGE outbound:whatsapp:delayed 0 0 WITHSCORES"));
  std::string member, due;
  std::getline(scored, member);
  std::getline(scored, due);
  ASSERT_FALSE(due.empty()) << member;
  EXPECT_GE(std::stoll(due), posted_at + 1500);
  EXPECT_EQ(member.find("delay_ms"), std::string::npos) << "filed without it: " << member;
  ASSERT_TRUE(
      eventually([&] { return redis.cli("HGET message:" + id + " status") == "sent"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(graph.count(), 1u);
}

TEST_F(OutboundProcess, TheProviderNeverSeesMoreThanTheRecipientPolicyAllowsAndNothingIsDropped) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(
      redis, graph, "",
      R"("whatsapp_recipient": {"algorithm": "sliding_window", "limit": 2, "window_ms": 1000})");
  for (int i = 0; i < 6; ++i) push(redis, reply("+4915100000005", "paced " + std::to_string(i)));
  push(redis, reply("+4915100000006", "someone else"));
  ASSERT_TRUE(eventually([&] { return graph.count() == 7; }, 10s)) << bellhop.output();
  std::vector<std::chrono::steady_clock::time_point> same;
  for (const auto& r : graph.requests())
    if (r.body.find("4915100000005") != std::string::npos) same.push_back(r.at);
  ASSERT_EQ(same.size(), 6u);
  // At most 2 in any 1 s (a little slack for the clocks of two processes).
  for (std::size_t i = 2; i < same.size(); ++i)
    EXPECT_GE(same[i] - same[i - 2], 950ms) << "send " << i;
  EXPECT_GE(std::stoi(redis.cli("HGET outbound:whatsapp:stats deferred")), 1);
}

TEST_F(OutboundProcess, TheProviderNeverSeesMoreThanTheSenderPolicyAllowsInAnySecond) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  // The business number's pace, lowered: 5 per second after a burst of 5.
  auto bellhop = start_bellhop(
      redis, graph, "",
      R"("whatsapp_business_number": {"algorithm": "gcra", "limit": 5, "window_ms": 1000,
                                       "burst": 5})");
  for (int i = 0; i < 25; ++i)
    push(redis, reply("+49151100000" + std::to_string(10 + i), "paced " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return graph.count() == 25; }, 20s)) << bellhop.output();
  auto sends = graph.requests();
  std::sort(sends.begin(), sends.end(), [](auto& a, auto& b) { return a.at < b.at; });
  // GCRA's bound over any window of T: burst + rate * T, so at most 10 in any second (a
  // little slack for the two processes' clocks: a window of 950 ms).
  std::size_t busiest = 0;
  for (std::size_t i = 0; i < sends.size(); ++i) {
    std::size_t n = 0;
    for (std::size_t j = i; j < sends.size() && sends[j].at - sends[i].at < 950ms; ++j) ++n;
    busiest = std::max(busiest, n);
  }
  EXPECT_LE(busiest, 10u);
  // And the pace is held, not undercut: 25 sends need (25 - 5) / 5 = 4 s after the burst.
  EXPECT_GE(sends.back().at - sends.front().at, 3500ms);
  EXPECT_EQ(redis.cli("LLEN outbound:whatsapp:dead"), "0");
}

TEST_F(OutboundProcess, ConversationalRepliesOvertakeFiveThousandBulkMessages) {
  // Ordering, not timing: the provider holds the bulk sends until the replies are ready, so
  // the test shows the same thing on a slow (sanitized, shared) machine as on a fast one.
  std::atomic<bool> hold_bulk{true};
  fake_provider graph([&](const fake_request& r, std::size_t i) {
    while (hold_bulk && r.body.find("bulk") != std::string::npos)
      std::this_thread::sleep_for(5ms);
    return graph_ok(i);
  });
  struct release_on_exit {  // the held connection threads must end whatever the test does
    std::atomic<bool>& flag;
    ~release_on_exit() { flag = false; }
  } release{hold_bulk};
  redis_server redis;
  constexpr int concurrency = 8;
  auto bellhop =
      start_bellhop(redis, graph, "\"concurrency\": " + std::to_string(concurrency));
  redis.cli("CONFIG SET appendonly no");
  // 5,000 bulk messages (priority 10) in one go: the first `concurrency` take every send slot
  // and are held there by the provider, the rest are filed as ready behind them.
  redis.cli(
      R"(EVAL "for i = 1, 5000 do redis.call('LPUSH', KEYS[1], '{\"property_id\":\"hotel-berlin\",\"channel\":\"whatsapp\",\"to\":\"+49151' .. (10000000 + i) .. '\",\"text\":\"bulk\",\"priority\":10}') end" 1 outbound:whatsapp)");
  auto ready = [&] { return std::stoi(redis.cli("ZCARD outbound:whatsapp:ready")); };
  ASSERT_TRUE(eventually(
      [&] { return graph.count() == concurrency && ready() == 5000 - concurrency; }, 60s))
      << graph.count() << " sends, ready " << ready() << "\n" << bellhop.output();
  // Then 10 replies (priority 3) to ten guests (one guest may get only 3 at once: its pair
  // limit), filed behind 4,992 ready bulk messages.
  for (int i = 0; i < 10; ++i)
    push(redis, reply("+491520000000" + std::to_string(i), "reply " + std::to_string(i), 3));
  ASSERT_TRUE(eventually([&] { return ready() == 5000 - concurrency + 10; }, 30s))
      << "ready " << ready() << "\n" << bellhop.output();
  EXPECT_EQ(graph.count(), static_cast<std::size_t>(concurrency)) << "a send slot was free";
  hold_bulk = false;

  auto replies_seen = [&] {
    int n = 0;
    for (const auto& r : graph.requests()) n += r.body.find("reply ") != std::string::npos;
    return n;
  };
  ASSERT_TRUE(eventually([&] { return replies_seen() == 10; }, 30s))
      << graph.count() << " sends, queue " << redis.cli("LLEN outbound:whatsapp") << ", ready "
      << ready() << "\nstats " << redis.cli("HGETALL outbound:whatsapp:stats") << "\n"
      << bellhop.output();
  // Each freed slot takes the lowest priority number, so the replies are the next ten sends.
  // Sends run side by side, so one bulk message taken after the last reply could reach the
  // provider before it; never more than the other slots.
  const auto sends = graph.requests();
  std::size_t last_reply = 0;
  for (std::size_t i = 0; i < sends.size(); ++i)
    if (sends[i].body.find("reply ") != std::string::npos) last_reply = i;
  std::size_t bulk_between = 0;  // after the held ones
  for (std::size_t i = concurrency; i < last_reply; ++i)
    bulk_between += sends[i].body.find("bulk") != std::string::npos;
  EXPECT_LT(bulk_between, static_cast<std::size_t>(concurrency))
      << bulk_between << " of the 4,992 waiting bulk messages went before the last reply";
}

TEST_F(OutboundProcess, KilledMidSendAndRestartedEveryMessageEndsSentOrDead) {
  redis_server redis;
  std::atomic<bool> slow{true};
  fake_provider graph([&](const fake_request&, std::size_t i) {
    if (slow) std::this_thread::sleep_for(1500ms);
    return graph_ok(i);
  });
  auto first = start_bellhop(redis, graph, R"("visibility_timeout_ms": 1000)");
  for (int i = 0; i < 5; ++i) push(redis, reply("+49153" + std::to_string(i), "survive " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return graph.count() >= 5; }, 10s)) << first.output();
  first.signal(SIGKILL);
  first.wait(5s);
  EXPECT_EQ(in_flight(redis), 5) << "the killed process left its sends in flight";
  slow = false;
  auto second = start_bellhop(redis, graph, R"("visibility_timeout_ms": 1000)");
  ASSERT_TRUE(eventually(
      [&] { return std::stoi("0" + redis.cli("HGET outbound:whatsapp:stats sent")) >= 5; }, 15s))
      << second.output();
  std::set<std::string> texts;
  for (const auto& r : graph.requests()) {
    auto b = json(r.body);
    if (b.IsObject()) texts.insert(b["text"]["body"].GetString());
  }
  EXPECT_EQ(texts.size(), 5u);
  EXPECT_TRUE(eventually([&] { return in_flight(redis) == 0; }, 5s));
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:delayed"), "0");
}

// The sends succeed while Redis is down: their outcome cannot be recorded at once, and the
// process that holds them stays alive (so no recovery of a stopped process takes them back).
// Each outcome is recorded once Redis is back; nothing is sent twice or left in flight.
TEST_F(OutboundProcess, SendsThatEndWhileRedisIsDownAreRecordedWhenItIsBack) {
  std::atomic<bool> hold{true};
  fake_provider graph([&](const fake_request&, std::size_t i) {
    while (hold) std::this_thread::sleep_for(5ms);
    return graph_ok(i);
  });
  struct release_on_exit {
    std::atomic<bool>& flag;
    ~release_on_exit() { flag = false; }
  } release{hold};
  redis_server redis({}, /*durable=*/true);
  auto bellhop = start_bellhop(redis, graph);
  for (int i = 0; i < 3; ++i) push(redis, reply("+49154" + std::to_string(i), "down " + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return graph.count() == 3; }, 10s)) << bellhop.output();
  ASSERT_EQ(in_flight(redis), 3);
  redis.stop();  // SIGKILL
  const auto errors = [&] {
    const auto body = http_get(port_, "/metrics").body;
    const auto at = body.find("\nbellhop_outbound_errors_total ");
    return at == std::string::npos ? 0 : std::stoi(body.substr(at + 31));
  };
  const int errors_before = errors();
  hold = false;  // the provider answers: three sends to record, and no Redis
  ASSERT_TRUE(eventually([&] { return errors() >= errors_before + 3; }, 20s)) << bellhop.output();
  redis.restart();
  ASSERT_TRUE(eventually(
      [&] { return redis.cli("HGET outbound:whatsapp:stats sent") == "3"; }, 30s))
      << bellhop.output();
  EXPECT_TRUE(eventually([&] { return in_flight(redis) == 0; }, 5s));
  EXPECT_EQ(graph.count(), 3u) << "a send went twice";
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");
}

// Outcomes that arrive together are recorded together: at load, outbound_finish.lua runs far
// fewer times than there are messages, and every message is recorded sent once.
TEST_F(OutboundProcess, AtLoadTheOutcomesOfManySendsAreRecordedInFewScriptCalls) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  const std::string big = R"({"algorithm": "fixed_window", "limit": 100000000, "window_ms": 1000})";
  auto bellhop =
      start_bellhop(redis, graph, R"("concurrency": 32)",
                    "\"whatsapp_business_number\": " + big + ", \"whatsapp_recipient\": " + big);
  constexpr int messages = 2000;
  ASSERT_TRUE(file_paused(redis, messages, "49151", "load")) << bellhop.output();
  // Every script call from now on, with its SHA1 (Redis's own record of the commands it ran).
  redis.cli("CONFIG SET slowlog-max-len 1000000");
  redis.cli("CONFIG SET slowlog-log-slower-than 0");
  redis.cli("SLOWLOG RESET");
  redis.cli("CONFIG RESETSTAT");
  redis.cli("DEL outbound:whatsapp:paused");
  ASSERT_TRUE(eventually(
      [&] { return redis.cli("HGET outbound:whatsapp:stats sent") == std::to_string(messages); },
      60s))
      << redis.cli("HGETALL outbound:whatsapp:stats") << "\n"
      << bellhop.output();
  redis.cli("CONFIG SET slowlog-log-slower-than 10000");
  const auto finish =
      broker::script::make("outbound_finish", std::string(gateway::lua::outbound_finish));
  std::istringstream log(redis.cli("SLOWLOG GET -1"));
  int finish_calls = 0;
  for (std::string line; std::getline(log, line);) finish_calls += line == finish.sha1;
  const auto stats = redis.cli("INFO commandstats");
  EXPECT_GT(finish_calls, 0) << stats;
  EXPECT_LE(finish_calls, messages / 4) << stats;
  EXPECT_EQ(graph.count(), static_cast<std::size_t>(messages));
  EXPECT_EQ(in_flight(redis), 0);
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");
  EXPECT_EQ(redis.cli("HGET outbound:whatsapp:stats deferred"), "");
  EXPECT_EQ(redis.cli("XLEN property:hotel-berlin:events"), std::to_string(messages));
  std::cout << "outbound_finish.lua ran " << finish_calls << " times for " << messages
            << " messages\n";
}

TEST_F(OutboundProcess, PostOutboundQueuesOnceAndTheAdminApiPausesRetriesAndPurges) {
  redis_server redis;
  std::atomic<bool> reject{true};
  fake_provider graph([&](const fake_request&, std::size_t i) {
    return reject ? fake_response{400, R"({"error":{"message":"nope","code":100}})"} : graph_ok(i);
  });
  auto bellhop = start_bellhop(redis, graph);
  const std::map<std::string, std::string> key = {
      {"Authorization", "Bearer outbound-test-key-0123456789"},
      {"Content-Type", "application/json"}};
  const std::string body =
      reply("+4915100000009", "via http", 5, R"(,"idempotency_key":"http-1")");
  auto first = http_request(port_, "POST", "/v1/messages/outbound", body, key);
  ASSERT_EQ(first.status, 202) << first.body;
  auto again = http_request(port_, "POST", "/v1/messages/outbound", body, key);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(json(again.body)["id"].GetString(), std::string(json(first.body)["id"].GetString()));
  EXPECT_STREQ(json(again.body)["status"].GetString(), "duplicate");
  // Bad requests: nothing queued.
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/outbound", body).status, 401);
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/outbound", "{", key).status, 400);
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/outbound",
                         R"({"property_id":"hotel-berlin","channel":"whatsapp","text":"x"})", key)
                .status,
            422);
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/outbound",
                         R"({"property_id":"hotel-berlin","channel":"fax","to":"1","text":"x"})",
                         key)
                .status,
            422);
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/outbound", body,
                         {{"Authorization", "Bearer outbound-test-key-0123456789"},
                          {"Content-Type", "text/plain"}})
                .status,
            415);

  // The provider refuses it: dead.
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "1"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(graph.count(), 1u);

  // Queue operations with the admin token only.
  const std::map<std::string, std::string> admin = {
      {"Authorization", "Bearer admin-token-0123456789"}};
  EXPECT_EQ(http_get(port_, "/v1/admin/queues").status, 401);
  EXPECT_EQ(http_request(port_, "GET", "/v1/admin/queues", "",
                         {{"Authorization", "Bearer admin-token-012345678X"}})
                .status,
            401);
  auto stats = http_request(port_, "GET", "/v1/admin/queues", "", admin);
  ASSERT_EQ(stats.status, 200) << stats.body;
  const auto doc = json(stats.body);  // q points into it
  const auto q = doc["queues"][0].GetObject();
  EXPECT_STREQ(q["channel"].GetString(), "whatsapp");
  EXPECT_EQ(q["dead"].GetInt(), 1);
  EXPECT_EQ(q["counters"]["failed"].GetInt(), 1);
  EXPECT_EQ(q["counters"]["accepted"].GetInt(), 1) << stats.body;
  EXPECT_EQ(http_request(port_, "POST", "/v1/admin/queues/fax/pause", "", admin).status, 404);

  // Paused: nothing is sent; resumed: it goes.
  reject = false;
  ASSERT_EQ(http_request(port_, "POST", "/v1/admin/queues/whatsapp/pause", "", admin).status, 200);
  push(redis, reply("+4915100000010", "after pause"));
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(graph.count(), 1u) << "paused";
  EXPECT_EQ(json(http_request(port_, "GET", "/v1/admin/queues", "", admin).body)["queues"][0]
                ["paused"]
                    .GetBool(),
            true);
  ASSERT_EQ(http_request(port_, "POST", "/v1/admin/queues/whatsapp/resume", "", admin).status, 200);
  ASSERT_TRUE(eventually([&] { return graph.count() == 2; }, 5s));

  // The dead letter, retried by its id, is sent this time.
  const std::string dead_id = json(first.body)["id"].GetString();
  EXPECT_EQ(http_request(port_, "POST", "/v1/admin/queues/whatsapp/dead/01NOSUCHID0000000000000000/retry",
                         "", admin)
                .status,
            404);
  auto retried = http_request(port_, "POST",
                              "/v1/admin/queues/whatsapp/dead/" + dead_id + "/retry", "", admin);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(json(retried.body)["requeued"].GetInt(), 1);
  ASSERT_TRUE(eventually([&] { return redis.cli("HGET message:" + dead_id + " status") == "sent"; },
                         5s))
      << redis.cli("HGETALL message:" + dead_id) << "\nqueue " << redis.cli("LRANGE outbound:whatsapp 0 -1")
      << "\ndead " << redis.cli("LRANGE outbound:whatsapp:dead 0 -1") << "\ndelayed "
      << redis.cli("ZRANGE outbound:whatsapp:delayed 0 -1") << "\n"
      << bellhop.output();
  EXPECT_EQ(graph.count(), 3u);
  EXPECT_EQ(redis.cli("LLEN outbound:whatsapp:dead"), "0");
  auto purged = http_request(port_, "DELETE", "/v1/admin/queues/whatsapp/dead", "", admin);
  EXPECT_EQ(purged.status, 200) << purged.body;
}

// Signed by Python's hmac, not by Bellhop's code.
std::string python_signature(const std::string& secret, const std::string& body,
                             const std::filesystem::path& dir) {
  const auto file = dir / "body.json";
  std::ofstream(file, std::ios::binary) << body;
  const std::string cmd =
      "/usr/bin/python3 -c 'import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), "
      "open(sys.argv[2], \"rb\").read(), hashlib.sha256).hexdigest())' '" +
      secret + "' '" + file.string() + "'";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return "sha256=" + out;
}

TEST_F(OutboundProcess, WhatsAppWebhooksAreVerifiedIngestedAndTheirStatusesReachTheDashboards) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  // The subscription challenge.
  auto challenge = http_get(port_, "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=verify&hub.challenge=1158201444");
  EXPECT_EQ(challenge.status, 200);
  EXPECT_EQ(challenge.body, "1158201444");
  EXPECT_EQ(http_get(port_, "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1").status,
            403);

  // A guest's message, signed: queued for the AI engine.
  const std::string inbound = R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"1234"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":"wamid.IN1","timestamp":"1795860000","type":"text","text":{"body":"What time is breakfast?"}}]}}]}]})";
  const auto sig = python_signature("app-secret", inbound, dir_.path());
  auto tampered = inbound;
  tampered[tampered.find("breakfast")] = 'B';
  EXPECT_EQ(http_request(port_, "POST", "/v1/webhooks/whatsapp", tampered,
                         {{"Content-Type", "application/json"}, {"X-Hub-Signature-256", sig}})
                .status,
            401);
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "0") << "a refused webhook queues nothing";
  auto ok = http_request(port_, "POST", "/v1/webhooks/whatsapp", inbound,
                         {{"Content-Type", "application/json"}, {"X-Hub-Signature-256", sig}});
  ASSERT_EQ(ok.status, 200) << ok.body << bellhop.output();
  auto queued = json(redis.cli("LINDEX inbound:messages 0"));
  ASSERT_TRUE(queued.IsObject());
  EXPECT_STREQ(queued["property_id"].GetString(), "hotel-berlin");
  EXPECT_STREQ(queued["from"].GetString(), "+4915112345678");
  EXPECT_STREQ(queued["guest_name"].GetString(), "Ana");
  EXPECT_STREQ(queued["text"].GetString(), "What time is breakfast?");
  // The provider's retry of the same webhook is a duplicate: still one entry.
  EXPECT_EQ(http_request(port_, "POST", "/v1/webhooks/whatsapp", inbound,
                         {{"Content-Type", "application/json"}, {"X-Hub-Signature-256", sig}})
                .status,
            200);
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "1");

  // The reply goes out; then Meta reports it delivered.
  push(redis, reply("+4915112345678", "From 7 to 10.", 5,
                    R"(,"conversation_id":")" + std::string(queued["conversation_id"].GetString()) + "\""));
  ASSERT_TRUE(eventually([&] { return redis.cli("GET outbound:whatsapp:provider:wamid.0") != ""; },
                         10s));
  const auto id = redis.cli("GET outbound:whatsapp:provider:wamid.0");
  const std::string status = R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"1234"},"statuses":[{"id":"wamid.0","status":"delivered","timestamp":"1795860060","recipient_id":"4915112345678"}]}}]}]})";
  auto st = http_request(port_, "POST", "/v1/webhooks/whatsapp", status,
                         {{"Content-Type", "application/json"},
                          {"X-Hub-Signature-256", python_signature("app-secret", status, dir_.path())}});
  ASSERT_EQ(st.status, 200) << st.body;
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "delivered");
  const auto history = redis.cli("XRANGE property:hotel-berlin:events - +");
  EXPECT_NE(history.find(R"("status":"delivered")"), std::string::npos) << history;
  // A late "sent" does not move it back.
  const std::string late = std::string(status).replace(status.find("delivered"), 9, "sent");
  EXPECT_EQ(http_request(port_, "POST", "/v1/webhooks/whatsapp", late,
                         {{"Content-Type", "application/json"},
                          {"X-Hub-Signature-256", python_signature("app-secret", late, dir_.path())}})
                .status,
            200);
  EXPECT_EQ(redis.cli("HGET message:" + id + " status"), "delivered");
}

// Redis stops answering (SIGSTOP) again and again while a channel sends under a tight sender
// limit, so claims and outcomes of every kind (sent, and requeued by the limit) are in flight
// when it stops: a call may run in Redis without its answer reaching Bellhop. A claim run
// without its answer must not leave its messages in the processing list, and an outcome
// recorded twice (a requeue whose message was claimed again in between) must not put a
// message in flight back in the queue: every message is sent, each once.
TEST_F(OutboundProcess, CallsWhoseAnswersAreLostNeitherStrandNorDoubleASend) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(
      redis, graph, R"("concurrency": 64)",
      R"("whatsapp_business_number": {"algorithm": "gcra", "limit": 400, "window_ms": 1000,
                                       "burst": 40},
         "whatsapp_recipient": {"algorithm": "fixed_window", "limit": 1000, "window_ms": 1000})");
  constexpr int n = 3000;
  ASSERT_TRUE(file_paused(redis, n, "49152", "lost")) << bellhop.output();
  redis.cli("DEL outbound:whatsapp:paused");
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(eventually([&] { return graph.count() >= std::size_t(200 + 700 * round); }, 30s))
        << bellhop.output();
    redis.freeze();
    std::this_thread::sleep_for(1500ms);  // longer than the command timeout (1 s)
    redis.thaw();
  }
  ASSERT_TRUE(eventually(
      [&] { return redis.cli("HGET outbound:whatsapp:stats sent") == std::to_string(n); }, 60s))
      << redis.cli("HGET outbound:whatsapp:stats sent") << " sent; in flight " << in_flight(redis)
      << ", ready " << redis.cli("ZCARD outbound:whatsapp:ready") << "\n"
      << bellhop.output();
  EXPECT_TRUE(eventually([&] { return in_flight(redis) == 0; }, 5s));
  std::map<std::string, int> sends;
  for (const auto& r : graph.requests()) {
    const auto at = r.body.find("4915210");
    if (at != std::string::npos) ++sends[r.body.substr(at, 13)];
  }
  EXPECT_EQ(sends.size(), static_cast<std::size_t>(n));
  int twice = 0;
  for (const auto& [to, count] : sends) twice += count > 1;
  EXPECT_EQ(twice, 0) << "messages sent more than once";
  EXPECT_EQ(graph.count(), static_cast<std::size_t>(n));
  EXPECT_GE(std::stoi(redis.cli("HGET outbound:whatsapp:stats deferred")), 1)
      << "no send was refused by the sender limit: the test missed its point";
  EXPECT_EQ(redis.cli("ZCARD outbound:whatsapp:ready"), "0");
  EXPECT_EQ(redis.cli("LLEN outbound:whatsapp:dead"), "0");
}

}  // namespace
}  // namespace bellhop::test
