// POST /v1/messages/inbound end to end: real bellhop processes, real redis-server, real sockets.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "inbound-test-key-0123456789";
const std::string berlin_only_key = "berlin-only-key-0123456789";
const std::string third_key = "third-adapter-key-0123456789";

class InboundProcess : public ::testing::Test {
 protected:
  // `top`: more top-level config members.
  child_process start_bellhop(const std::string& redis_url, const std::string& top = "") {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "redis": {"url": ")" << redis_url
                          << R"(", "command_timeout_ms": 1000},)" << (top.empty() ? "" : top + ",")
                          << R"(
      "auth": {"adapter_keys": [
        {"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]},
        {"name": "berlin", "key": ")"
                          << berlin_only_key << R"(", "properties": ["hotel-berlin"]},
        {"name": "third", "key": ")"
                          << third_key << R"(", "properties": ["*"]}
      ]}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  static std::string message(const std::string& property, const std::string& external_id,
                             const std::string& from, const std::string& text) {
    return R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":")" +
           external_id + R"(","from":")" + from + R"(","text":")" + text + "\"}";
  }

  static std::map<std::string, std::string> headers(const std::string& key = adapter_key) {
    return {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
  }

  // Posts n messages (external ids prefix0, prefix1, …) that must each be answered 202.
  void post_accepted(const std::string& property, const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(http_request(port_, "POST", "/v1/messages/inbound",
                             message(property, prefix + std::to_string(i), "+1", "t"), headers())
                    .status,
                202);
    }
  }

  // The queue from oldest to newest (bellhop LPUSHes, consumers take from the right).
  std::vector<rapidjson::Document> queue(redis_server& redis) {
    std::vector<rapidjson::Document> out;
    auto raw = redis.cli("LRANGE inbound:messages 0 -1");
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < raw.size()) {
      auto end = raw.find('\n', start);
      if (end == std::string::npos) end = raw.size();
      lines.push_back(raw.substr(start, end - start));
      start = end + 1;
    }
    for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
      rapidjson::Document d;
      d.Parse(it->c_str());
      EXPECT_TRUE(d.IsObject()) << *it;
      out.push_back(std::move(d));
    }
    return out;
  }

  // A sample of GET /metrics (`name` with its labels, as exposed), or -1 if absent.
  double metric(const std::string& name) {
    const auto body = http_get(port_, "/metrics").body;
    const auto at = body.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(body.substr(at + name.size() + 2));
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(InboundProcess, TenThousandFromSixteenClientsEachOnceInConversationOrder) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  constexpr int clients = 16, per_client = 625, conversations_per_client = 5;
  std::atomic<int> accepted{0}, other{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      http_connection conn(port_);
      for (int i = 0; i < per_client; ++i) {
        // Each client owns its conversations and sends each one's messages in order.
        const int conversation = c * conversations_per_client + i % conversations_per_client;
        auto r = conn.request("POST", "/v1/messages/inbound",
                              message("hotel-" + std::to_string(conversation % 3),
                                      "ext-" + std::to_string(c) + "-" + std::to_string(i),
                                      "+49151" + std::to_string(conversation), std::to_string(i)),
                              headers());
        (r.status == 202 ? accepted : other)++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(accepted.load(), clients * per_client);
  EXPECT_EQ(other.load(), 0);

  auto q = queue(redis);
  ASSERT_EQ(q.size(), static_cast<std::size_t>(clients * per_client));
  std::set<std::string> ids, external_ids;
  std::map<std::string, int> last_text;  // conversation -> last message number seen
  for (auto& d : q) {
    ids.insert(d["id"].GetString());
    external_ids.insert(d["external_id"].GetString());
    const std::string conversation = d["conversation_id"].GetString();
    const int n = std::stoi(d["text"].GetString());
    auto it = last_text.find(conversation);
    if (it != last_text.end()) {
      ASSERT_GT(n, it->second) << "conversation " << conversation << " out of order";
    }
    last_text[conversation] = n;
  }
  EXPECT_EQ(ids.size(), q.size()) << "ids must be unique";
  EXPECT_EQ(external_ids.size(), q.size()) << "every message exactly once";
  EXPECT_EQ(last_text.size(), static_cast<std::size_t>(clients * conversations_per_client));
  // Each message has its status record and an event with a strictly increasing seq.
  EXPECT_EQ(redis.cli("XLEN property:hotel-0:events"), redis.cli("GET property:hotel-0:seq"));
  // Every message went through the ingest script once, and with 16 clients some calls of it
  // carried several (group commit).
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_sum"), clients * per_client);
  const double calls = metric("bellhop_inbound_batch_messages_count");
  EXPECT_GT(calls, 0);
  EXPECT_LT(calls, clients * per_client);
}

TEST_F(InboundProcess, MessagesWaitingForRedisGoInOneCallWhereARefusalCostsOnlyItsOwnMessage) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());  // command timeout 1 s
  redis.cli("SET property:hotel-blocked:events not-a-stream");  // a foreign key in the way
  // Redis holds every client for 600 ms. Three messages fill the calls Bellhop keeps in flight;
  // the three after them wait and leave together when the first call returns.
  redis.cli("CLIENT PAUSE 600 ALL");
  auto post = [&](const std::string& property, const std::string& external_id) {
    return std::async(std::launch::async, [this, property, external_id] {
      return http_request(port_, "POST", "/v1/messages/inbound",
                          message(property, external_id, "+1", external_id), headers());
    });
  };
  std::vector<std::future<http_result>> fillers;
  for (int i = 0; i < 3; ++i) fillers.push_back(post("hotel-a", "filler-" + std::to_string(i)));
  std::this_thread::sleep_for(150ms);
  auto before = post("hotel-a", "before");
  std::this_thread::sleep_for(50ms);
  auto refused = post("hotel-blocked", "refused");
  std::this_thread::sleep_for(50ms);
  auto after = post("hotel-c", "after");
  for (auto& f : fillers) EXPECT_EQ(f.get().status, 202);
  EXPECT_EQ(before.get().status, 202);
  const auto r = refused.get();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(after.get().status, 202);

  // Calls: three of one message, then one of three.
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_bucket{le=\"1\"}"), 3);
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_bucket{le=\"2\"}"), 3);
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_bucket{le=\"4\"}"), 4);
  // The refused message left nothing behind; the others of its call are whole and in order.
  EXPECT_EQ(redis.cli("EXISTS dedup:hotel-blocked:whatsapp:refused"), "0")
      << "a retry must not be a duplicate";
  EXPECT_EQ(redis.cli("EXISTS property:hotel-blocked:seq"), "0");
  auto q = queue(redis);
  ASSERT_EQ(q.size(), 5u);
  EXPECT_EQ(std::string(q[3]["external_id"].GetString()), "before");
  EXPECT_EQ(std::string(q[4]["external_id"].GetString()), "after");
  EXPECT_EQ(redis.cli("XLEN property:hotel-c:events"), "1");
  EXPECT_EQ(redis.cli("HGET message:" + std::string(q[4]["id"].GetString()) + " status"), "queued");
  EXPECT_NE(bellhop.output().find("ingest: Redis refused the message (WRONGTYPE"),
            std::string::npos)
      << bellhop.output();
}

// Two copies of one message in the same call: the second shares the first one's fate, a
// duplicate of it when it is stored, refused with it when it is not (so the retry stores it).
TEST_F(InboundProcess, TwoCopiesInOneCallAreOneMessageAndARefusedOneLeavesNoDedupKey) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  redis.cli("SET property:hotel-blocked:events not-a-stream");
  redis.cli("CLIENT PAUSE 600 ALL");
  auto post = [&](const std::string& property, const std::string& external_id) {
    return std::async(std::launch::async, [this, property, external_id] {
      return http_request(port_, "POST", "/v1/messages/inbound",
                          message(property, external_id, "+1", external_id), headers());
    });
  };
  std::vector<std::future<http_result>> fillers;
  for (int i = 0; i < 3; ++i) fillers.push_back(post("hotel-a", "filler-" + std::to_string(i)));
  std::this_thread::sleep_for(150ms);
  std::vector<std::future<http_result>> waiting;  // these four go in one call
  waiting.push_back(post("hotel-a", "twin"));
  waiting.push_back(post("hotel-blocked", "blocked-twin"));
  waiting.push_back(post("hotel-a", "twin"));
  waiting.push_back(post("hotel-blocked", "blocked-twin"));
  for (auto& f : fillers) EXPECT_EQ(f.get().status, 202);
  std::vector<http_result> r;
  for (auto& f : waiting) r.push_back(f.get());
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_bucket{le=\"2\"}"), 3);
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_bucket{le=\"4\"}"), 4) << "one call of four";

  std::multiset<int> twin_statuses{r[0].status, r[2].status};
  EXPECT_EQ(twin_statuses, (std::multiset<int>{200, 202})) << r[0].body << r[2].body;
  rapidjson::Document a, b;
  a.Parse(r[0].body.c_str());
  b.Parse(r[2].body.c_str());
  ASSERT_TRUE(a.IsObject() && b.IsObject());
  EXPECT_STREQ(a["id"].GetString(), b["id"].GetString()) << "the duplicate names the stored copy";
  EXPECT_EQ(r[1].status, 503) << r[1].body;
  EXPECT_EQ(r[3].status, 503) << r[3].body;
  EXPECT_EQ(redis.cli("EXISTS dedup:hotel-blocked:whatsapp:blocked-twin"), "0")
      << "a retry must be stored";

  auto q = queue(redis);
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(std::string(q[3]["external_id"].GetString()), "twin");
  EXPECT_EQ(redis.cli("XLEN property:hotel-a:events"), "4");
  // Once the foreign key is gone, the retry of the refused message is stored.
  redis.cli("DEL property:hotel-blocked:events");
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/inbound",
                         message("hotel-blocked", "blocked-twin", "+1", "blocked-twin"), headers())
                .status,
            202);
}

TEST_F(InboundProcess, SameExternalIdEightTimesConcurrentlyIsQueuedOnce) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  std::mutex m;
  std::vector<std::pair<int, std::string>> answers;
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = http_request(port_, "POST", "/v1/messages/inbound",
                            message("hotel-berlin", "wamid.same", "+4915100", "hello"), headers());
      std::lock_guard lock(m);
      answers.emplace_back(r.status, r.body);
    });
  }
  for (auto& t : threads) t.join();
  int queued = 0, duplicates = 0;
  std::set<std::string> ids;
  for (auto& [status, body] : answers) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    ASSERT_TRUE(d.IsObject()) << body;
    ids.insert(d["id"].GetString());
    if (status == 202) {
      queued++;
      EXPECT_STREQ(d["status"].GetString(), "queued");
    } else if (status == 200) {
      duplicates++;
      EXPECT_STREQ(d["status"].GetString(), "duplicate");
    }
  }
  EXPECT_EQ(queued, 1);
  EXPECT_EQ(duplicates, 7);
  EXPECT_EQ(ids.size(), 1u) << "duplicates answer with the first message's id";
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "1");
  EXPECT_EQ(redis.cli("XLEN property:hotel-berlin:events"), "1") << "no second event";
  // The status record is readable with the key.
  auto status = http_request(port_, "GET", "/v1/messages/" + *ids.begin(), "", headers());
  EXPECT_EQ(status.status, 200);
  EXPECT_NE(status.body.find("\"status\":\"queued\""), std::string::npos) << status.body;
}

TEST_F(InboundProcess, RedisDownMeans503NeverAcceptedThenResumes) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  ASSERT_EQ(http_request(port_, "POST", "/v1/messages/inbound",
                         message("hotel-berlin", "before", "+1", "t"), headers())
                .status,
            202);
  redis.stop();
  for (int i = 0; i < 20; ++i) {
    auto r = http_request(port_, "POST", "/v1/messages/inbound",
                          message("hotel-berlin", "during-" + std::to_string(i), "+1", "t"),
                          headers());
    ASSERT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.headers["retry-after"], "1");
    EXPECT_NE(r.body.find("\"code\":\"unavailable\""), std::string::npos) << r.body;
  }
  redis.start();
  // Ingestion resumes without restarting bellhop (the test Redis has no persistence, so only
  // the new message is there).
  ASSERT_TRUE(eventually(
      [&] {
        return http_request(port_, "POST", "/v1/messages/inbound",
                            message("hotel-berlin", "after", "+1", "t"), headers())
                   .status == 202;
      },
      15s));
  auto q = queue(redis);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_STREQ(q[0]["external_id"].GetString(), "after");
  EXPECT_TRUE(bellhop.running());
}

TEST_F(InboundProcess, KillNineUnderLoadLosesNoAcceptedMessage) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  std::mutex m;
  std::set<std::string> accepted_ids;
  std::atomic<bool> stop{false};
  std::atomic<int> sent{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 8; ++c) {
    threads.emplace_back([&, c] {
      http_connection conn(port_);
      for (int i = 0; !stop; ++i) {
        auto r = conn.request(
            "POST", "/v1/messages/inbound",
            message("hotel-berlin", "load-" + std::to_string(c) + "-" + std::to_string(i),
                    "+49" + std::to_string(c), "m"),
            headers());
        sent++;
        if (r.status == 202) {
          rapidjson::Document d;
          d.Parse(r.body.c_str());
          std::lock_guard lock(m);
          accepted_ids.insert(d["id"].GetString());
        } else if (r.status == 0) {
          return;  // bellhop is gone
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return sent.load() > 2000; }, 30s));
  bellhop.signal(SIGKILL);
  bellhop.wait(5s);
  stop = true;
  for (auto& t : threads) t.join();
  ASSERT_GT(accepted_ids.size(), 1000u);
  std::set<std::string> stored;
  for (auto& d : queue(redis)) stored.insert(d["id"].GetString());
  for (const auto& id : accepted_ids) {
    ASSERT_TRUE(stored.contains(id)) << "answered 202 but not in Redis: " << id;
  }
}

TEST_F(InboundProcess, LostSeqCounterContinuesAfterTheStreamInsteadOfWedging) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  ASSERT_NO_FATAL_FAILURE(post_accepted("hotel-berlin", "s", 3));
  redis.cli("DEL property:hotel-berlin:seq");  // e.g. deleted by hand
  auto r = http_request(port_, "POST", "/v1/messages/inbound",
                        message("hotel-berlin", "after-loss", "+1", "t"), headers());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(redis.cli("GET property:hotel-berlin:seq"), "4");
  EXPECT_EQ(redis.cli("XLEN property:hotel-berlin:events"), "4");
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "4");
}

TEST_F(InboundProcess, SeqCounterBehindTheStreamContinuesAfterIt) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  ASSERT_NO_FATAL_FAILURE(post_accepted("hotel-berlin", "b", 5));
  redis.cli("SET property:hotel-berlin:seq 2");  // e.g. restored from an older copy
  auto r = http_request(port_, "POST", "/v1/messages/inbound",
                        message("hotel-berlin", "after-restore", "+1", "t"), headers());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(redis.cli("GET property:hotel-berlin:seq"), "6");
  EXPECT_EQ(redis.cli("XLEN property:hotel-berlin:events"), "6");
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "6");
}

TEST_F(InboundProcess, AnUnwritableHistoryIs503AndLeavesNoDedupKeySoTheRetryQueues) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  redis.cli("SET property:hotel-berlin:events not-a-stream");  // a foreign key in the way
  const auto body = message("hotel-berlin", "blocked-1", "+1", "t");
  auto r = http_request(port_, "POST", "/v1/messages/inbound", body, headers());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.headers.count("retry-after"), 1u);
  EXPECT_EQ(redis.cli("EXISTS dedup:hotel-berlin:whatsapp:blocked-1"), "0")
      << "a retry must not be a duplicate";
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "0");
  EXPECT_EQ(redis.cli("EXISTS property:hotel-berlin:seq"), "0") << "no seq used up";
  EXPECT_EQ(redis.cli("DBSIZE"), "2") << "the foreign key and the reaper lease: nothing written";
  EXPECT_NE(bellhop.output().find("ingest: Redis refused the message (WRONGTYPE"),
            std::string::npos)
      << bellhop.output();

  redis.cli("DEL property:hotel-berlin:events");
  r = http_request(port_, "POST", "/v1/messages/inbound", body, headers());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "1");

  // Refused again with a counter in use: it stays at the last seq handed out.
  redis.cli("DEL property:hotel-berlin:events");
  redis.cli("SET property:hotel-berlin:events not-a-stream");
  r = http_request(port_, "POST", "/v1/messages/inbound",
                   message("hotel-berlin", "blocked-2", "+1", "t"), headers());
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(redis.cli("GET property:hotel-berlin:seq"), "1");
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "1");
}

TEST_F(InboundProcess, RedisNotAnsweringIs503WithinTheCommandTimeoutForEveryWaitingMessage) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());  // command timeout 1 s
  redis.cli("CLIENT PAUSE 4000 ALL");  // connected, but answering nobody
  // Far more messages than one round of calls carries: none may wait a timeout per round.
  constexpr int clients = 200;
  std::vector<std::future<std::pair<int, std::chrono::steady_clock::duration>>> answers;
  for (int i = 0; i < clients; ++i) {
    answers.push_back(std::async(std::launch::async, [this, i] {
      const auto start = std::chrono::steady_clock::now();
      auto r = http_request(port_, "POST", "/v1/messages/inbound",
                            message("hotel-a", "paused-" + std::to_string(i), "+1", "t"),
                            headers());
      return std::pair{r.status, std::chrono::steady_clock::now() - start};
    }));
  }
  for (auto& a : answers) {
    const auto [status, took] = a.get();
    EXPECT_EQ(status, 503);
    // One timeout (1 s) and scheduling slack; a round per 96 messages would be 3 s.
    EXPECT_LT(took, 2500ms) << "waited a timeout per round of calls";
  }
}

TEST_F(InboundProcess, OverItsPolicyAnAdapterKeyGets429WithRateLimitHeadersThen202AfterTheWindow) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url(), R"("ratelimit": {"inbound_api": "api",
      "policies": {"api": {"algorithm": "fixed_window", "limit": 3, "window_ms": 1000}}})");
  // Start at the beginning of a window (Redis's clock), so three fit in one.
  eventually([&] {
    auto t = redis.cli("TIME");
    return std::stol(t.substr(t.find('\n') + 1)) < 300000;
  }, 2s);
  for (int i = 0; i < 3; ++i) {
    auto r = http_request(port_, "POST", "/v1/messages/inbound",
                          message("hotel-a", "limited-" + std::to_string(i), "+1", "t"), headers());
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.headers["ratelimit-limit"], "3");
    EXPECT_EQ(r.headers["ratelimit-remaining"], std::to_string(2 - i));
  }
  auto r = http_request(port_, "POST", "/v1/messages/inbound",
                        message("hotel-a", "limited-3", "+1", "t"), headers());
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_NE(r.body.find("\"code\":\"rate_limited\""), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(r.headers["ratelimit-limit"], "3");
  EXPECT_EQ(r.headers["ratelimit-remaining"], "0");
  EXPECT_EQ(r.headers["ratelimit-reset"], "1");
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "3") << "a refused message is not queued";
  EXPECT_EQ(redis.cli("EXISTS dedup:hotel-a:whatsapp:limited-3"), "0");
  // Another adapter key has its own allowance.
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/inbound",
                         message("hotel-berlin", "berlin-1", "+1", "t"), headers(berlin_only_key))
                .status,
            202);

  std::this_thread::sleep_for(1s);  // Retry-After
  r = http_request(port_, "POST", "/v1/messages/inbound",
                   message("hotel-a", "limited-3", "+1", "t"), headers());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"denied\"}"), 1);
  EXPECT_EQ(metric("bellhop_inbound_messages_total{result=\"rate_limited\"}"), 1);
}

// A gcra policy on the inbound API, decided in the ingest script as check.lua decides it: the
// burst admitted, then a refusal whose Retry-After is the time one unit takes to come back.
// Its state is a field per adapter key in the policy's hash of the slice of time, not a key.
TEST_F(InboundProcess, AGcraPolicyOfTheInboundApiAdmitsItsBurstThenRefusesUntilAUnitIsBack) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url(), R"("ratelimit": {"inbound_api": "api",
      "policies": {"api": {"algorithm": "gcra", "limit": 2, "window_ms": 60000, "burst": 2}}})");
  for (int i = 0; i < 2; ++i) {
    auto r = http_request(port_, "POST", "/v1/messages/inbound",
                          message("hotel-a", "gcra-" + std::to_string(i), "+1", "t"), headers());
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.headers["ratelimit-remaining"], std::to_string(1 - i));
  }
  auto r = http_request(port_, "POST", "/v1/messages/inbound",
                        message("hotel-a", "gcra-2", "+1", "t"), headers());
  EXPECT_EQ(r.status, 429) << r.body;
  const auto retry = std::stol(r.headers["retry-after"]);
  EXPECT_GT(retry, 28) << "2 per minute: a unit is back 30 s after it was taken";
  EXPECT_LE(retry, 30);
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "2") << "a refused message is not queued";
  // The slice is 60 s (the bucket's fill time); the state is a field of its hash (two hashes
  // when the messages fell on both sides of a slice's end).
  std::istringstream hashes(redis.cli("KEYS ratelimit:api@*"));
  int with_key = 0;
  for (std::string hash; std::getline(hashes, hash);) {
    EXPECT_EQ(hash.substr(hash.size() - 2), "/2") << hash;
    EXPECT_EQ(redis.cli("TYPE " + hash), "hash");
    with_key += redis.cli("HEXISTS " + hash + " all") == "1";  // the adapter key's name
  }
  EXPECT_GE(with_key, 1);
  EXPECT_EQ(redis.cli("EXISTS ratelimit:api:all"), "0");
  // Another adapter key has its own bucket.
  EXPECT_EQ(
      http_request(port_, "POST", "/v1/messages/inbound",
                   message("hotel-berlin", "berlin-gcra", "+1", "t"), headers(berlin_only_key))
          .status,
      202);
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"denied\"}"), 1);
}

// The inbound API's limit is decided inside the ingest script: messages of several keys sent
// at once share script calls, each key's messages consume in order, the refused ones are 429
// with the headers of a refusal and leave nothing in Redis.
TEST_F(InboundProcess, LimitDecidedInTheIngestCallCountsPerKeyAndStoresNoRefusedMessage) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url(), R"("ratelimit": {"inbound_api": "api",
      "policies": {"api": {"algorithm": "sliding_window", "limit": 10, "window_ms": 60000}}})");
  struct answer {
    std::string key, external_id;
    http_result r;
  };
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"all", adapter_key}, {"berlin", berlin_only_key}, {"third", third_key}};
  constexpr int per_key = 25;
  // Redis holds the scripts back for a moment, so the messages pile up and go in calls of many,
  // each mixing the three keys.
  redis.cli("CLIENT PAUSE 500 WRITE");
  std::vector<std::future<answer>> futures;
  for (int i = 0; i < per_key; ++i) {
    for (const auto& [name, key] : keys) {
      futures.push_back(std::async(std::launch::async, [this, name, key, i] {
        const auto ext = name + "-" + std::to_string(i);
        return answer{name, ext,
                      http_request(port_, "POST", "/v1/messages/inbound",
                                   message("hotel-berlin", ext, "+1", "t"), headers(key))};
      }));
    }
  }
  std::map<std::string, std::set<std::string>> remaining_of_202;  // key -> RateLimit-Remaining
  std::map<std::string, int> refused;
  std::set<std::string> accepted_ids;
  for (auto& f : futures) {
    auto a = f.get();
    EXPECT_EQ(a.r.headers["ratelimit-limit"], "10") << a.r.body;
    if (a.r.status == 202) {
      remaining_of_202[a.key].insert(a.r.headers["ratelimit-remaining"]);
      accepted_ids.insert(a.external_id);
      EXPECT_EQ(a.r.headers.count("retry-after"), 0u);
    } else {
      ASSERT_EQ(a.r.status, 429) << a.r.body;
      ++refused[a.key];
      EXPECT_NE(a.r.body.find("\"code\":\"rate_limited\""), std::string::npos) << a.r.body;
      EXPECT_NE(a.r.body.find("policy 'api'"), std::string::npos) << a.r.body;
      EXPECT_EQ(a.r.headers["ratelimit-remaining"], "0");
      const auto retry = std::stol(a.r.headers["retry-after"]);
      EXPECT_GE(retry, 55) << "the oldest of the window leaves in ~60 s";
      EXPECT_LE(retry, 60);
      EXPECT_GE(std::stol(a.r.headers["ratelimit-reset"]), retry) << "the newest leaves last";
      EXPECT_EQ(redis.cli("EXISTS dedup:hotel-berlin:whatsapp:" + a.external_id), "0")
          << "a refused message leaves no dedup key";
    }
  }
  for (const auto& [name, key] : keys) {
    // Ten each, consumed one after the other: every count from 9 down to 0 once.
    EXPECT_EQ(remaining_of_202[name],
              (std::set<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}))
        << name;
    EXPECT_EQ(refused[name], per_key - 10) << name;
    EXPECT_EQ(redis.cli("ZCARD ratelimit:api:" + name), "10") << name;
  }
  // Only the accepted messages are stored: queue, history, records, dedup keys.
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "30");
  EXPECT_EQ(redis.cli("XLEN property:hotel-berlin:events"), "30");
  EXPECT_EQ(redis.cli("GET property:hotel-berlin:seq"), "30");
  std::set<std::string> queued;
  for (const auto& d : queue(redis)) queued.insert(d["external_id"].GetString());
  EXPECT_EQ(queued, accepted_ids);
  EXPECT_EQ(redis.cli("EVAL \"return #redis.call('KEYS', 'dedup:*')\" 0"), "30");
  // Counted per policy through the limiter, as a check of its own would be.
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"allowed\"}"), 30);
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"denied\"}"), 45);
  EXPECT_EQ(metric("bellhop_inbound_messages_total{result=\"rate_limited\"}"), 45);
  EXPECT_EQ(metric("bellhop_inbound_messages_total{result=\"queued\"}"), 30);
  // The messages shared script calls (the limit decided in them): fewer calls than messages.
  EXPECT_LT(metric("bellhop_inbound_batch_messages_count"), 75);
  EXPECT_EQ(metric("bellhop_inbound_batch_messages_sum"), 75);
}

// As when the check was a call of its own before the ingest: a re-post of a stored message
// costs a unit and is answered duplicate while the key is within its limit, 429 once over it.
TEST_F(InboundProcess, ADuplicateRepostConsumesItsUnitAndIsRefusedOverTheLimit) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url(), R"("ratelimit": {"inbound_api": "api",
      "policies": {"api": {"algorithm": "sliding_window", "limit": 3, "window_ms": 60000}}})");
  const auto first = message("hotel-a", "dup-1", "+1", "t");
  auto r = http_request(port_, "POST", "/v1/messages/inbound", first, headers());
  ASSERT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["ratelimit-remaining"], "2");
  const auto id = r.body.substr(r.body.find("\"id\":\"") + 6, 26);
  r = http_request(port_, "POST", "/v1/messages/inbound", first, headers());
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"status\":\"duplicate\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(id), std::string::npos) << r.body;
  EXPECT_EQ(r.headers["ratelimit-limit"], "3");
  EXPECT_EQ(r.headers["ratelimit-remaining"], "1");
  r = http_request(port_, "POST", "/v1/messages/inbound", message("hotel-a", "dup-2", "+1", "t"),
                   headers());
  EXPECT_EQ(r.status, 202) << r.body;
  EXPECT_EQ(r.headers["ratelimit-remaining"], "0");
  r = http_request(port_, "POST", "/v1/messages/inbound", first, headers());
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.headers["ratelimit-remaining"], "0");
  EXPECT_EQ(r.headers.count("retry-after"), 1u);
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "2");
  EXPECT_EQ(redis.cli("GET dedup:hotel-a:whatsapp:dup-1"), id) << "still the first message's";
  EXPECT_EQ(metric("bellhop_inbound_messages_total{result=\"duplicate\"}"), 1);
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"allowed\"}"), 3);
  EXPECT_EQ(metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"denied\"}"), 1);
}

// The script cannot decide a limit whose key holds another type: the policy's failure mode
// applies as for any check (closed: 503 and nothing stored; open: the message is stored).
TEST_F(InboundProcess, AnUndecidableLimitFollowsThePolicysFailureMode) {
  for (const std::string fail : {"closed", "open"}) {
    SCOPED_TRACE(fail);
    redis_server redis;
    auto bellhop = start_bellhop(redis.url(), R"("ratelimit": {"inbound_api": "api",
        "policies": {"api": {"algorithm": "sliding_window", "limit": 3, "window_ms": 60000,
                             "fail": ")" + fail + R"("}}})");
    redis.cli("SET ratelimit:api:all not-a-sorted-set");  // a foreign key in the way
    // In one script call with messages of another key, whose limits are decided there.
    redis.cli("CLIENT PAUSE 300 WRITE");
    std::vector<std::future<http_result>> others;
    for (int i = 0; i < 3; ++i) {
      others.push_back(std::async(std::launch::async, [this, i] {
        return http_request(port_, "POST", "/v1/messages/inbound",
                            message("hotel-berlin", "other-" + std::to_string(i), "+1", "t"),
                            headers(berlin_only_key));
      }));
    }
    auto r = http_request(port_, "POST", "/v1/messages/inbound",
                          message("hotel-a", "undecided-1", "+1", "t"), headers());
    std::set<std::string> remaining;
    for (auto& f : others) {
      auto o = f.get();
      EXPECT_EQ(o.status, 202) << o.body;
      remaining.insert(o.headers["ratelimit-remaining"]);
    }
    EXPECT_EQ(remaining, (std::set<std::string>{"0", "1", "2"}));
    EXPECT_EQ(redis.cli("LLEN inbound:messages"), fail == "closed" ? "3" : "4");
    if (fail == "closed") {
      EXPECT_EQ(r.status, 503) << r.body;
      EXPECT_NE(r.body.find("rate limit could not be checked"), std::string::npos) << r.body;
      EXPECT_EQ(redis.cli("EXISTS dedup:hotel-a:whatsapp:undecided-1"), "0");
    } else {
      EXPECT_EQ(r.status, 202) << r.body;
      EXPECT_EQ(redis.cli("EXISTS dedup:hotel-a:whatsapp:undecided-1"), "1");
    }
    EXPECT_EQ(
        metric("bellhop_ratelimit_decisions_total{policy=\"api\",result=\"failed_" + fail + "\"}"),
        1);
    // Another key over its limit is refused in the script as usual.
    r = http_request(port_, "POST", "/v1/messages/inbound",
                     message("hotel-berlin", "decided-1", "+1", "t"), headers(berlin_only_key));
    EXPECT_EQ(r.status, 429) << r.body;
  }
}

struct bad_request {
  const char* name;
  std::string body;
  std::map<std::string, std::string> headers;
  int status;
  const char* code;
};

TEST_F(InboundProcess, BadInputsGetTheirStatusAndCodeAndQueueNothing) {
  redis_server redis;
  auto bellhop = start_bellhop(redis.url());
  const auto ok = message("hotel-berlin", "e1", "+1", "t");
  const std::vector<bad_request> table = {
      {"malformed json", "{\"property_id\":", headers(), 400, "malformed_json"},
      {"wrong type", R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":"e","from":5,"text":"t"})",
       headers(), 422, "invalid_type"},
      {"missing field", R"({"property_id":"hotel-berlin","channel":"whatsapp","from":"+1","text":"t"})",
       headers(), 422, "missing_field"},
      {"unknown channel", R"({"property_id":"hotel-berlin","channel":"pigeon","external_id":"e","from":"+1","text":"t"})",
       headers(), 422, "unknown_channel"},
      {"oversize body", message("hotel-berlin", "big", "+1", std::string(2 << 20, 'x')), headers(),
       413, "payload_too_large"},
      {"wrong content type", ok, {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "text/plain"}},
       415, "unsupported_media_type"},
      {"no key", ok, {{"Content-Type", "application/json"}}, 401, "unauthorized"},
      {"bad key", ok, headers("not-a-configured-key-000"), 401, "unauthorized"},
      {"key for another property", message("hotel-paris", "e2", "+1", "t"), headers(berlin_only_key),
       403, "forbidden"},
  };
  for (const auto& c : table) {
    auto r = http_request(port_, "POST", "/v1/messages/inbound", c.body, c.headers);
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_EQ(r.headers["content-type"], "application/json") << c.name;
    EXPECT_NE(r.body.find(std::string("\"code\":\"") + c.code + "\""), std::string::npos)
        << c.name << ": " << r.body;
  }
  EXPECT_EQ(redis.cli("LLEN inbound:messages"), "0");
  // A refused request must not touch Redis (the reaper's lease is the only key there).
  auto keys = redis.cli("KEYS '*'");
  EXPECT_TRUE(keys.empty() || keys == "inbound:messages:reaper") << keys;
  // And the server is still fine.
  EXPECT_EQ(http_request(port_, "POST", "/v1/messages/inbound", ok, headers()).status, 202);
  EXPECT_EQ(http_request(port_, "GET", "/v1/messages/unknown-id", "", headers()).status, 404);
  EXPECT_EQ(http_request(port_, "GET", "/v1/messages/x", "", {}).status, 401);
}

}  // namespace
}  // namespace bellhop::test
