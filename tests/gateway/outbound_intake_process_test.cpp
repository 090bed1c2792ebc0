// The outbound intake end to end (docs/outbound.md, "Intake"): a real bellhop and
// redis-server. Elements are taken many per call into the process's intake hash (or a longer
// queue whole, as an intake list) and filed in batches, by priority then arrival; these tests
// check that the records, the ready order and the dead letters are those of filing one element
// at a time, that a reply behind a campaign is filed first, and that a process killed
// mid-intake loses and doubles nothing.
// The channel is paused throughout (the intake goes on, no send starts), so what the intake
// filed stays in the ready set to be looked at.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/bellhop_config.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

std::string element(const std::string& to, const std::string& text, int priority,
                    const std::string& extra = "") {
  return R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + to + R"(","text":")" +
         text + R"(","priority":)" + std::to_string(priority) + extra + "}";
}

class OutboundIntake : public ::testing::Test {
 protected:
  child_process start_bellhop(const redis_server& redis, const std::string& outbound = "") {
    const auto port = port_ = free_port();
    const auto config = dir_.path() / ("config-" + std::to_string(++runs_) + ".json");
    std::ofstream(config) << "{"
                          << bellhop_config_head(port,
                                                 dir_.path() / ("data-" + std::to_string(runs_)),
                                                 redis.url(), local_url(port))
                          << R"(
      "auth": {"admin_token": "admin-token-0123456789"},
      "outbound": {"backoff_initial_ms": 100)"
                          << (outbound.empty() ? "" : ", " + outbound) << R"(},
      "channels": {"whatsapp": {"app_secret": "app-secret", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "service_window_s": 0, "api_base_url": "http://127.0.0.1:9/v21.0"}}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  // Pushes `elements` in one LPUSH (the intake sees them all at once), oldest first.
  static void push_all(redis_client& c, const std::vector<std::string>& elements) {
    broker::command cmd = {"LPUSH", "outbound:whatsapp"};
    cmd.insert(cmd.end(), elements.begin(), elements.end());
    c.run(std::move(cmd));
  }
  static long long stat(redis_client& c, const std::string& name) {
    const auto v = c.get({"HGET", "outbound:whatsapp:stats", name});
    return v == "<nil>" ? 0 : std::stoll(v);
  }
  // Elements the intake is done with: filed, held, duplicates or dead.
  static long long handled(redis_client& c) {
    return stat(c, "accepted") + stat(c, "duplicates") + stat(c, "invalid") + stat(c, "held");
  }
  static std::vector<std::string> strings(const broker::reply& r) {
    std::vector<std::string> out;
    for (const auto& e : r.elements()) out.push_back(e.is_string() ? e.str() : "");
    return out;
  }
  // The ready set, lowest score first, as "text" of each message.
  static std::vector<std::string> ready_texts(redis_client& c) {
    std::vector<std::string> out;
    for (const auto& m : strings(c.run({"ZRANGE", "outbound:whatsapp:ready", "0", "-1"}))) {
      rapidjson::Document d;
      d.Parse(m.c_str());
      out.push_back(d.IsObject() && d.HasMember("text") ? d["text"].GetString() : "?");
    }
    return out;
  }
  // What a message's record says, without what differs between two filings of one element
  // (its id, when, the digest of a JSON that holds both).
  static std::map<std::string, std::string> record_of(redis_client& c, const std::string& json) {
    rapidjson::Document d;
    d.Parse(json.c_str());
    std::map<std::string, std::string> out;
    if (!d.IsObject() || !d.HasMember("id")) return out;
    const auto r = strings(c.run({"HGETALL", std::string("message:") + d["id"].GetString()}));
    for (std::size_t i = 0; i + 1 < r.size(); i += 2)
      if (r[i] != "id" && r[i] != "created_at" && r[i] != "digest") out[r[i]] = r[i + 1];
    return out;
  }
  static std::multiset<std::string> dead_reasons(redis_client& c) {
    std::multiset<std::string> out;
    for (const auto& letter : strings(c.run({"LRANGE", "outbound:whatsapp:dead", "0", "-1"}))) {
      rapidjson::Document d;
      d.Parse(letter.c_str());
      if (d.IsObject() && d.HasMember("reason") && d.HasMember("element"))
        out.insert(std::string(d["reason"].GetString()) + " | " + d["element"].GetString());
    }
    return out;
  }
  static std::vector<std::string> keys_matching(redis_client& c, const std::string& pattern) {
    return strings(c.run({"KEYS", pattern}));
  }
  // Elements taken and not filed: those of the intake hashes, and of the intake lists
  // (queues taken whole) those whose bit is not set in <list>:filed.
  static long long intake_size(redis_client& c) {
    long long n = 0;
    for (const auto& k : keys_matching(c, "outbound:whatsapp:intake:*")) {
      const auto type = c.run({"TYPE", k}).str();
      if (type == "hash") n += std::stoll(c.get({"HLEN", k}));
      if (type == "list")
        n += std::stoll(c.get({"LLEN", k})) - std::stoll(c.get({"BITCOUNT", k + ":filed"}));
    }
    return n;
  }

  // bellhop_outbound_errors_total of the bellhop started last.
  long long outbound_errors() const {
    const auto body = http_get(port_, "/metrics").body;
    const auto at = body.find("\nbellhop_outbound_errors_total ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + 31));
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

// A mix of what an engine pushes: priorities 1 to 10 in no order, repeated idempotency keys
// (the same priority for the same key: which copy a key keeps follows the filing order),
// delayed messages and invalid elements. Counts the duplicates and the invalid ones.
struct mix {
  std::vector<std::string> elements;
  long long duplicates = 0, invalid = 0;
};
mix mixed_elements(int n) {
  mix m;
  auto& out = m.elements;
  std::set<std::string> keys;
  for (int i = 0; i < n; ++i) {
    const int priority = 1 + (i * 7) % 10;
    const std::string to = "+4915100" + std::to_string(100000 + i);
    const std::string text = "m" + std::to_string(i);
    if (i % 17 == 5) {
      out.push_back(element(to, text, priority, R"(,"delay_ms":600000)"));
    } else if (i % 13 == 4) {
      const auto key = "k" + std::to_string(i % 3);
      m.duplicates += !keys.insert(key).second;
      out.push_back(element(to, text, 4, R"(,"idempotency_key":")" + key + "\""));
    } else if (i % 23 == 7) {
      out.push_back("not json " + text);
      ++m.invalid;
    } else if (i % 29 == 11) {
      out.push_back(element(to, text, 11));  // priority out of range
      ++m.invalid;
    } else {
      out.push_back(element(to, text, priority));
    }
  }
  return m;
}

TEST_F(OutboundIntake, ABatchIsFiledAsOneElementAtATime) {
  const auto mixed = mixed_elements(150);
  const auto& elements = mixed.elements;
  redis_server batch_redis, single_redis;
  redis_client batch(batch_redis.tcp_endpoint()), single(single_redis.tcp_endpoint());
  batch.run({"SET", "outbound:whatsapp:paused", "1"});
  single.run({"SET", "outbound:whatsapp:paused", "1"});
  auto batch_bellhop = start_bellhop(batch_redis);
  auto single_bellhop = start_bellhop(single_redis);

  push_all(batch, elements);
  for (std::size_t i = 0; i < elements.size(); ++i) {
    push_all(single, {elements[i]});
    ASSERT_TRUE(eventually([&] { return handled(single) == static_cast<long long>(i + 1); }, 10s))
        << i << "\n"
        << single_bellhop.output();
  }
  ASSERT_TRUE(
      eventually([&] { return handled(batch) == static_cast<long long>(elements.size()); }, 20s))
      << handled(batch) << "\n"
      << batch_bellhop.output();

  // The ready order: priority, then the list's order, in both.
  const auto ready = ready_texts(batch);
  EXPECT_EQ(ready, ready_texts(single));
  std::vector<std::pair<int, int>> expected;  // (priority, index) of the ready ones
  for (const auto& text : ready) {
    const int i = std::stoi(text.substr(1));
    rapidjson::Document d;
    d.Parse(elements[static_cast<std::size_t>(i)].c_str());
    expected.emplace_back(d["priority"].GetInt(), i);
  }
  EXPECT_TRUE(std::is_sorted(expected.begin(), expected.end()));
  EXPECT_GT(ready.size(), 100u);

  for (const char* counter : {"accepted", "duplicates", "invalid", "held"})
    EXPECT_EQ(stat(batch, counter), stat(single, counter)) << counter;
  EXPECT_EQ(stat(batch, "duplicates"), mixed.duplicates);
  EXPECT_GT(mixed.duplicates, 3);
  EXPECT_EQ(dead_reasons(batch), dead_reasons(single));
  EXPECT_EQ(static_cast<long long>(dead_reasons(batch).size()), mixed.invalid);

  // The same records, for the ready and the delayed messages alike.
  std::map<std::string, std::map<std::string, std::string>> records[2];
  redis_client* clients[2] = {&batch, &single};
  for (int c = 0; c < 2; ++c) {
    for (const char* set : {"outbound:whatsapp:ready", "outbound:whatsapp:delayed"}) {
      for (const auto& m : strings(clients[c]->run({"ZRANGE", set, "0", "-1"}))) {
        rapidjson::Document d;
        d.Parse(m.c_str());
        ASSERT_TRUE(d.IsObject() && d.HasMember("text")) << m;
        records[c][d["text"].GetString()] = record_of(*clients[c], m);
      }
    }
  }
  EXPECT_EQ(records[0], records[1]);
  EXPECT_EQ(records[0].size(), static_cast<std::size_t>(stat(batch, "accepted")));
  for (const auto& [text, record] : records[0]) {
    EXPECT_EQ(record.at("status"), "queued") << text;
    EXPECT_EQ(record.at("channel"), "whatsapp") << text;
  }
  EXPECT_EQ(intake_size(batch), 0);
}

TEST_F(OutboundIntake, AReplyBehindFiveThousandBulkMessagesIsFiledFirst) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  auto bellhop = start_bellhop(redis);
  std::vector<std::string> elements;
  for (int i = 0; i < 5000; ++i)
    elements.push_back(element("+4915110" + std::to_string(100000 + i), "bulk", 10));
  elements.push_back(element("+4915199999999", "reply", 3));
  push_all(c, elements);  // the reply last, behind all of the campaign
  ASSERT_TRUE(eventually([&] { return handled(c) == 5001; }, 60s)) << handled(c) << "\n"
                                                                   << bellhop.output();
  // Its score is 3 × 10^12 + the arrival number it was filed with: more than the messages
  // filed before it (an accept call takes a number for each message it holds).
  const auto first = strings(c.run({"ZRANGE", "outbound:whatsapp:ready", "0", "0", "WITHSCORES"}));
  ASSERT_EQ(first.size(), 2u);
  EXPECT_NE(first[0].find("\"reply\""), std::string::npos) << first[0];
  // The queue was taken whole (one LPUSH: the intake saw all of it at once) and read before
  // any of it was filed, so the reply went first.
  const auto filed_before = std::stoll(first[1]) - 3'000'000'000'000LL - 1;
  EXPECT_EQ(filed_before, 0) << "the reply was filed after up to " << filed_before
                             << " of the 5,000 bulk messages ahead of it";
}

TEST_F(OutboundIntake, AProcessKilledMidIntakeLosesAndDoublesNothing) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  constexpr int unique = 20000, repeats = 500;
  std::vector<std::string> elements;
  for (int i = 0; i < unique; ++i) {
    const auto to = "+4915120" + std::to_string(100000 + i);
    const auto text = "u" + std::to_string(i);
    // Every 10th with an idempotency key; a second copy of the first 500 keys comes at the end.
    elements.push_back(
        i % 10 == 0
            ? element(to, text, 5 + i % 3, R"(,"idempotency_key":"key-)" + std::to_string(i) + "\"")
            : element(to, text, 5 + i % 3));
  }
  for (int j = 0; j < repeats; ++j)
    elements.push_back(element("+4915130000000", "repeat-" + std::to_string(j * 10), 7,
                               R"(,"idempotency_key":"key-)" + std::to_string(j * 10) + "\""));
  auto first = start_bellhop(redis, R"("visibility_timeout_ms": 1000)");
  push_all(c, elements);
  // Killed while it holds elements it took and has not filed, with some filed.
  ASSERT_TRUE(eventually([&] { return intake_size(c) > 0 && handled(c) > 0; }, 20s))
      << first.output();
  first.signal(SIGKILL);
  first.wait(5s);
  const auto held_by_the_dead = intake_size(c);
  const auto handled_before = handled(c);
  EXPECT_GT(held_by_the_dead, 0);
  EXPECT_LT(handled_before, unique + repeats) << "nothing left to recover";

  auto second = start_bellhop(redis, R"("visibility_timeout_ms": 1000)");
  ASSERT_TRUE(eventually([&] { return handled(c) >= unique + repeats; }, 60s))
      << handled(c) << " of " << unique + repeats << "\n"
      << second.output();
  EXPECT_EQ(handled(c), unique + repeats);
  EXPECT_EQ(stat(c, "duplicates"), repeats);
  EXPECT_EQ(stat(c, "accepted"), unique);
  // Each element once; of the two copies of an idempotency key, one (which one depends on
  // who filed what first: the dead process's elements go back behind the queue).
  const auto texts = ready_texts(c);
  std::multiset<std::string> seen(texts.begin(), texts.end());
  EXPECT_EQ(texts.size(), static_cast<std::size_t>(unique)) << "a message was filed twice or lost";
  for (int i = 0; i < unique; ++i) {
    const auto copies = seen.count("u" + std::to_string(i)) +
                        (i % 10 == 0 ? seen.count("repeat-" + std::to_string(i)) : 0);
    ASSERT_EQ(copies, 1u) << "element " << i;
  }
  EXPECT_EQ(c.get({"LLEN", "outbound:whatsapp"}), "0");
  EXPECT_TRUE(eventually([&] { return intake_size(c) == 0; }, 5s));
  EXPECT_EQ(c.get({"LLEN", "outbound:whatsapp:dead"}), "0");
}

// A process taken for dead while it is alive (stopped longer than the visibility timeout, in
// the middle of filing a queue it took whole): another process hands back what it had not
// filed; once it runs again, what it still holds of that is found gone, not filed again.
TEST_F(OutboundIntake, AProcessTakenForDeadWhileAliveFilesNothingTwice) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  constexpr int n = 20000;
  std::vector<std::string> elements;
  for (int i = 0; i < n; ++i)
    elements.push_back(
        element("+4915180" + std::to_string(100000 + i), "s" + std::to_string(i), 1 + i % 10));
  auto first = start_bellhop(redis, R"("visibility_timeout_ms": 1000)");
  const auto first_gateway = strings(c.run({"ZRANGE", "outbound:gateways", "0", "0"}));
  ASSERT_EQ(first_gateway.size(), 1u);
  push_all(c, elements);
  ASSERT_TRUE(eventually([&] { return intake_size(c) > 0 && handled(c) > 0; }, 20s))
      << first.output();
  first.signal(SIGSTOP);
  ASSERT_FALSE(keys_matching(c, "outbound:whatsapp:intake:" + first_gateway[0] + ":*").empty())
      << "the queue was not taken whole: the test missed its point";
  auto second = start_bellhop(redis, R"("visibility_timeout_ms": 1000)");
  // Handed back: the stopped process's intake is gone (its elements in the queue, or filed
  // again by the second).
  ASSERT_TRUE(eventually(
      [&] {
        return keys_matching(c, "outbound:whatsapp:intake:" + first_gateway[0] + "*").empty();
      },
      20s))
      << second.output();
  first.signal(SIGCONT);
  ASSERT_TRUE(eventually([&] { return handled(c) >= n; }, 60s))
      << handled(c) << " of " << n << "\n"
      << first.output() << second.output();
  // Both processes are done with what they hold: nothing more is filed.
  ASSERT_TRUE(eventually([&] { return intake_size(c) == 0; }, 10s)) << intake_size(c);
  EXPECT_EQ(handled(c), n);
  EXPECT_EQ(stat(c, "accepted"), n);
  EXPECT_EQ(stat(c, "duplicates"), 0);
  const auto texts = ready_texts(c);
  const std::set<std::string> seen(texts.begin(), texts.end());
  EXPECT_EQ(texts.size(), static_cast<std::size_t>(n)) << "an element was filed twice or lost";
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(c.get({"LLEN", "outbound:whatsapp:dead"}), "0");
  EXPECT_NE(second.output().find("of stopped processes back in the queues"), std::string::npos)
      << second.output();
}

// Redis stops answering in the middle of the intake (SIGSTOP: the process's commands time
// out, a take or an accept call may have run without its answer): once it answers again,
// every element is filed once, none is left in the intake hash.
TEST_F(OutboundIntake, TakesAndFilingsWhoseAnswersAreLostLoseAndDoubleNothing) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  auto bellhop = start_bellhop(redis);
  constexpr int n = 30000;
  std::vector<std::string> elements;
  for (int i = 0; i < n; ++i)
    elements.push_back(
        element("+4915160" + std::to_string(100000 + i), "f" + std::to_string(i), 1 + i % 10));
  push_all(c, elements);
  ASSERT_TRUE(eventually([&] { return intake_size(c) > 0; }, 20s)) << bellhop.output();
  redis.freeze();
  std::this_thread::sleep_for(2500ms);  // longer than the command timeout (1 s)
  redis.thaw();
  ASSERT_TRUE(eventually([&] { return handled(c) >= n; }, 60s)) << handled(c) << " of " << n << "\n"
                                                                << bellhop.output();
  EXPECT_TRUE(eventually([&] { return intake_size(c) == 0; }, 10s)) << intake_size(c);
  EXPECT_EQ(handled(c), n);
  const auto texts = ready_texts(c);
  const std::set<std::string> seen(texts.begin(), texts.end());
  EXPECT_EQ(texts.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
  EXPECT_EQ(c.get({"LLEN", "outbound:whatsapp"}), "0");
  EXPECT_GT(outbound_errors(), 0)
      << "no Redis call of the intake failed: the test missed its point";
}

TEST_F(OutboundIntake, InvalidElementsInABatchAreDeadLetteredWithTheirReasonsAndTheRestFiled) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  auto bellhop = start_bellhop(redis);
  std::vector<std::string> elements;
  const std::map<std::string, std::string> invalid = {
      {"not json", "not a JSON object"},
      {R"({"property_id":"hotel-berlin","channel":"whatsapp","text":"no recipient"})",
       "to is missing"},
      {element("+4915140000001", "x", 0), "priority must be an integer from 1 to 10"},
      {R"({"property_id":"hotel-paris","channel":"whatsapp","to":"+4915140000002","text":"x"})",
       "is not the property of channel whatsapp"},
      {R"([1,2,3])", "not a JSON object"},
  };
  int i = 0;
  for (const auto& [e, why] : invalid) {
    for (int k = 0; k < 40; ++k, ++i)
      elements.push_back(
          element("+4915141" + std::to_string(100000 + i), "ok" + std::to_string(i), 1 + i % 10));
    elements.push_back(e);
  }
  push_all(c, elements);
  ASSERT_TRUE(
      eventually([&] { return handled(c) == static_cast<long long>(elements.size()); }, 20s))
      << handled(c) << "\n"
      << bellhop.output();
  EXPECT_EQ(stat(c, "accepted"), i);
  EXPECT_EQ(stat(c, "invalid"), static_cast<long long>(invalid.size()));
  const auto dead = dead_reasons(c);
  ASSERT_EQ(dead.size(), invalid.size());
  for (const auto& [e, why] : invalid) {
    const auto letter = std::find_if(dead.begin(), dead.end(), [&](const std::string& d) {
      return d.size() >= e.size() && d.compare(d.size() - e.size(), e.size(), e) == 0;
    });
    ASSERT_NE(letter, dead.end()) << e;
    EXPECT_EQ(letter->rfind("invalid: ", 0), 0u) << *letter;
    EXPECT_NE(letter->find(why), std::string::npos) << *letter;
  }
  EXPECT_EQ(ready_texts(c).size(), static_cast<std::size_t>(i));
}

// Keys the accept call writes after an element left the intake hash, holding what they should
// not (a conversation's messages list of another type, an arrivals counter that is not a
// number): the elements are still filed, each once, none dead-lettered or lost.
TEST_F(OutboundIntake, KeysOfTheWrongKindAfterTheTakeLoseNoElement) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  const std::string cid = "c_0123456789abcdef0123456789abcdef";
  c.run({"HSET", "conversation:" + cid, "property_id", "hotel-berlin", "mode", "ai"});
  c.run({"SET", "conversation:" + cid + ":messages", "not a list"});
  c.run({"SET", "outbound:whatsapp:arrivals", "not a number"});
  auto bellhop = start_bellhop(redis);
  push_all(c, {element("+4915142000001", "first", 5),
               element("+4915142000002", "joins a broken conversation", 5,
                       R"(,"conversation_id":")" + cid + R"(")"),
               element("+4915142000003", "third", 5)});
  ASSERT_TRUE(eventually([&] { return handled(c) == 3; }, 20s)) << handled(c) << "\n"
                                                                << bellhop.output();
  EXPECT_EQ(stat(c, "accepted"), 3);
  EXPECT_EQ(c.get({"LLEN", "outbound:whatsapp:dead"}), "0");
  EXPECT_EQ(ready_texts(c),
            (std::vector<std::string>{"first", "joins a broken conversation", "third"}));
  EXPECT_EQ(c.get({"HLEN",
                   "outbound:whatsapp:intake:" + c.get({"ZRANGE", "outbound:gateways", "0", "0"})}),
            "0");
}

// A dead process's intake hash goes back to the queue in the order it was taken, and is filed.
TEST_F(OutboundIntake, ADeadProcesssIntakeHashIsHandedBackInTakeOrder) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  // Numbered as a take numbers them: "12" after "7" after "3" (not in text order).
  c.run({"HSET", "outbound:whatsapp:intake:gone-1-AAAA", "12",
         element("+4915150000003", "third", 5), "3", element("+4915150000001", "first", 5), "7",
         element("+4915150000002", "second", 5)});
  c.run({"ZADD", "outbound:gateways", "1", "gone-1-AAAA"});
  auto bellhop = start_bellhop(redis);
  ASSERT_TRUE(eventually([&] { return handled(c) == 3; }, 10s)) << bellhop.output();
  EXPECT_EQ(ready_texts(c), (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(c.get({"EXISTS", "outbound:whatsapp:intake:gone-1-AAAA"}), "0");
  EXPECT_EQ(c.get({"ZSCORE", "outbound:gateways", "gone-1-AAAA"}), "<nil>");
}

// More than one recovery's budget (20,000), numbered with gaps (what filing leaves): handed back
// over several heartbeats, each element once, still in take order.
TEST_F(OutboundIntake, ALargeDeadIntakeHashIsHandedBackInTakeOrderOverSeveralHeartbeats) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  constexpr int count = 25000;
  broker::command hset = {"HSET", "outbound:whatsapp:intake:gone-2-BBBB"};
  std::vector<std::string> expected;  // element i's text, in take order
  for (int i = 1; i <= count; ++i) {
    char text[16];
    std::snprintf(text, sizeof text, "n%06d", i);
    expected.push_back(text);
  }
  for (int i = count; i >= 1; --i) {  // written newest first: the hash's order says nothing
    hset.push_back(std::to_string(3 * i));
    hset.push_back(element("+49151" + std::to_string(60000000 + i), expected[i - 1], 5));
  }
  c.run(std::move(hset));
  c.run({"ZADD", "outbound:gateways", "1", "gone-2-BBBB"});
  auto bellhop = start_bellhop(redis);
  ASSERT_TRUE(eventually([&] { return handled(c) == count; }, 120s)) << handled(c) << "\n"
                                                                     << bellhop.output();
  EXPECT_EQ(ready_texts(c), expected);
  EXPECT_EQ(c.get({"EXISTS", "outbound:whatsapp:intake:gone-2-BBBB"}), "0");
  EXPECT_EQ(c.get({"ZSCORE", "outbound:gateways", "gone-2-BBBB"}), "<nil>");
}

// What an intake took and has not filed yet is waiting, for the admin API.
TEST_F(OutboundIntake, ElementsTakenAndNotFiledYetCountAsWaiting) {
  redis_server redis;
  redis_client c(redis.tcp_endpoint());
  c.run({"SET", "outbound:whatsapp:paused", "1"});
  // Another process, alive (its heartbeat far ahead), holding three elements it took.
  c.run({"HSET", "outbound:whatsapp:intake:alive-1-AAAA", "1", element("+4915170000001", "a", 5),
         "2", element("+4915170000002", "b", 5), "3", element("+4915170000003", "c", 5)});
  // And a queue it took whole (an intake list, numbered 4 to 6), the second of it filed.
  c.run({"LPUSH", "outbound:whatsapp:intake:alive-1-AAAA:4", element("+4915170000006", "f", 5),
         element("+4915170000007", "g", 5), element("+4915170000008", "h", 5)});
  c.run({"SETBIT", "outbound:whatsapp:intake:alive-1-AAAA:4:filed", "1", "1"});
  c.run({"HSET", "outbound:whatsapp:intake:alive-1-AAAA:lists", "4", "3"});
  c.run({"ZADD", "outbound:gateways", "99999999999999", "alive-1-AAAA"});
  auto bellhop = start_bellhop(redis);
  push_all(c, {element("+4915170000004", "d", 5), element("+4915170000005", "e", 5)});
  ASSERT_TRUE(eventually([&] { return handled(c) == 2; }, 10s)) << bellhop.output();
  const auto r = http_request(port_, "GET", "/v1/admin/queues", "",
                              {{"Authorization", "Bearer admin-token-0123456789"}});
  ASSERT_EQ(r.status, 200) << r.body;
  rapidjson::Document d;
  d.Parse(r.body.c_str());
  ASSERT_TRUE(d.IsObject() && d.HasMember("queues") && d["queues"].IsArray() &&
              d["queues"].Size() == 1)
      << r.body;
  EXPECT_EQ(d["queues"][0]["waiting"].GetInt(), 7) << r.body;  // 3 + 2 taken, 2 ready
  EXPECT_EQ(c.get({"HLEN", "outbound:whatsapp:intake:alive-1-AAAA"}), "3");
}

}  // namespace
}  // namespace bellhop::test
