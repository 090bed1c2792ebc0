// outbound_finish.lua on real redis-servers: a batch of outcomes recorded in one call leaves
// Redis exactly as the same outcomes recorded one call each, and a batch run again (its reply
// lost) changes nothing and counts nothing twice (docs/outbound.md, "Crash safety").
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "bellhop/outbound/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

std::string message(const std::string& id, int priority, const std::string& to) {
  return R"({"id":")" + id + R"(","priority":)" + std::to_string(priority) +
         R"(,"property_id":"hotel-berlin","channel":"whatsapp","to":")" + to +
         R"(","text":"Your room is ready."})";
}

// One outcome as the dispatcher hands it to the script: six keys, fifteen arguments (a sent
// one with the attempts the claim read, none, plus this one; every record has a reason).
struct outcome {
  std::vector<std::string> keys, args;
};

outcome make(const std::string& mode, const std::string& id, int priority, const std::string& to,
             const std::string& provider_id = "", bool opted_out = false,
             const std::string& sent_as = "") {
  const bool event = mode == "sent" || mode == "dead";
  const std::string data =
      event ? R"({"id":")" + id + R"(","status":")" + (mode == "sent" ? "sent" : "failed") + R"("})"
            : "";
  const std::string letter =
      mode == "dead" ? R"({"message":)" + message(id, priority, to) + R"(,"reason":"nope"})" : "";
  return {
      {"message:" + id, "outbound:whatsapp:provider:" + (provider_id.empty() ? "-" : provider_id),
       "property:hotel-berlin:seq", "property:hotel-berlin:events", "optout:whatsapp:" + to,
       "stats:minute:29000000"},
      {mode, message(id, priority, to), "2026-12-05T10:00:00.000Z",
       mode == "defer" || mode == "retry" ? "1800000060000" : "0", provider_id,
       mode == "retry" || mode == "dead" ? "nope" : "", mode == "dead" ? "100" : "",
       event ? "property:hotel-berlin:conversations" : "", event ? "hotel-berlin" : "", data,
       letter, opted_out ? "1" : "0", sent_as, mode == "sent" ? "1" : "", "1"}};
}

// Every mode; a message the list does not hold any more (recovered elsewhere), and one sent
// whose send is not recorded although it left the list (recorded all the same).
std::vector<outcome> mixed() {
  return {make("sent", "m1", 5, "+4915100000001", "wamid.1"),
          make("sent", "m2", 3, "+4915100000002", "wamid.2", false, "template"),
          make("defer", "m3", 5, "+4915100000003"),
          make("requeue", "m4", 7, "+4915100000004"),
          make("retry", "m5", 5, "+4915100000005"),
          make("dead", "m6", 5, "+4915100000006", "", true),
          make("retry", "gone", 5, "+4915100000007"),
          make("dead", "m8", 5, "+4915100000008"),
          make("sent", "late", 5, "+4915100000009", "wamid.9")};
}

class FinishLua : public ::testing::Test {
 protected:
  // The messages of `outcomes` taken to send: in the processing list, each with its record
  // (m5 on its second attempt); "gone" and "late" are not in the list.
  static void take(test::redis_client& c, const std::vector<outcome>& outcomes) {
    for (const auto& o : outcomes) {
      const auto& id = o.keys[0].substr(8);
      c.run({"HSET", o.keys[0], "id", id, "status", "queued", "reason", "earlier"});
      if (id != "gone" && id != "late") c.run({"LPUSH", "processing", o.args[1]});
    }
    c.run({"HSET", "message:m5", "attempts", "1"});
  }

  // `call`: the batch's number; 0 takes the next (a batch run again keeps its number).
  static reply run(test::redis_client& c, const std::vector<outcome>& batch, long long call = 0) {
    static long long calls = 0;
    if (call == 0) call = ++calls;
    broker::command cmd = {"EVAL",
                           std::string(lua::outbound_finish),
                           std::to_string(6 + batch.size() * 6),
                           "processing",
                           "stats",
                           "delayed",
                           "dead",
                           "ready",
                           "calls"};
    for (const auto& o : batch) cmd.insert(cmd.end(), o.keys.begin(), o.keys.end());
    cmd.insert(cmd.end(), {"604800", "1000", "7200", std::to_string(call)});
    for (const auto& o : batch) cmd.insert(cmd.end(), o.args.begin(), o.args.end());
    return c.run(std::move(cmd));
  }

  // Every key with its type, value and whether it expires: what a comparison of two Redis
  // states needs (the event stream's ids are the seqs the script gives, so they compare too).
  static std::map<std::string, std::string> dump(test::redis_client& c) {
    std::map<std::string, std::string> out;
    const auto keys = c.run({"KEYS", "*"});
    for (const auto& k : keys.elements()) {
      const auto& key = k.str();
      if (key == "calls") continue;  // the batches' numbers: one call against several
      const auto type = c.run({"TYPE", key}).str();
      std::string value = type + ":";
      reply r;
      if (type == "string") r = c.run({"GET", key});
      if (type == "hash") r = c.run({"HGETALL", key});
      if (type == "list") r = c.run({"LRANGE", key, "0", "-1"});
      if (type == "zset") r = c.run({"ZRANGE", key, "0", "-1", "WITHSCORES"});
      if (type == "stream") r = c.run({"XRANGE", key, "-", "+"});
      if (type == "hash") {  // field order is not part of the state
        std::vector<std::string> pairs;
        const auto& e = r.elements();
        for (std::size_t i = 0; i + 1 < e.size(); i += 2)
          pairs.push_back(e[i].str() + "=" + e[i + 1].str());
        std::sort(pairs.begin(), pairs.end());
        for (const auto& p : pairs) value += p + ";";
      } else {
        value += r.to_string();
      }
      value += c.run({"TTL", key}).integer() > 0 ? " (expires)" : "";
      out[key] = value;
    }
    return out;
  }

  test::redis_server batched_, one_by_one_;
  test::redis_client a_{batched_.unix_endpoint()}, b_{one_by_one_.unix_endpoint()};
};

TEST_F(FinishLua, ABatchOfMixedOutcomesLeavesWhatOneCallEachLeaves) {
  const auto outcomes = mixed();
  take(a_, outcomes);
  take(b_, outcomes);
  const auto r = run(a_, outcomes);
  ASSERT_TRUE(r.is_array()) << r.to_string();
  std::vector<long long> results;
  for (const auto& e : r.elements()) results.push_back(e.integer());
  EXPECT_EQ(results, (std::vector<long long>{1, 1, 1, 1, 1, 1, 0, 1, 1}));
  for (const auto& o : outcomes) {
    const auto one = run(b_, {o});
    ASSERT_TRUE(one.is_array() && one.elements().size() == 1) << one.to_string();
  }
  const auto batched = dump(a_);
  EXPECT_EQ(batched, dump(b_));

  // And what that state is: each mode did what it does.
  auto field = [&](const std::string& id, const std::string& f) {
    const auto v = a_.run({"HGET", "message:" + id, f});
    return v.is_string() ? v.str() : "<nil>";
  };
  EXPECT_EQ(field("m1", "status"), "sent");
  EXPECT_EQ(field("m1", "provider_message_id"), "wamid.1");
  EXPECT_EQ(field("m1", "reason"), "<nil>");
  EXPECT_EQ(field("m1", "attempts"), "1");
  EXPECT_EQ(field("m2", "sent_as"), "template");
  EXPECT_EQ(a_.get({"GET", "outbound:whatsapp:provider:wamid.1"}), "m1");
  EXPECT_EQ(field("m3", "attempts"), "<nil>");
  EXPECT_EQ(a_.get({"ZSCORE", "delayed", message("m3", 5, "+4915100000003")}), "1800000060000");
  EXPECT_EQ(a_.get({"ZSCORE", "ready", message("m4", 7, "+4915100000004")}), "7000000000000");
  EXPECT_EQ(field("m5", "attempts"), "2");
  EXPECT_EQ(field("m5", "reason"), "nope");
  EXPECT_EQ(field("m6", "status"), "failed");
  EXPECT_EQ(a_.get({"GET", "optout:whatsapp:+4915100000006"}), "2026-12-05T10:00:00.000Z");
  EXPECT_EQ(a_.get({"EXISTS", "optout:whatsapp:+4915100000008"}), "0");
  EXPECT_EQ(field("gone", "status"), "queued") << "a message no longer in the list is left alone";
  EXPECT_EQ(field("gone", "attempts"), "<nil>");
  EXPECT_EQ(field("late", "status"), "sent") << "a send that happened is recorded";
  EXPECT_EQ(a_.get({"LLEN", "processing"}), "0");
  EXPECT_EQ(a_.get({"LLEN", "dead"}), "2");
  EXPECT_EQ(a_.get({"XLEN", "property:hotel-berlin:events"}), "5");  // 3 sent, 2 dead
  EXPECT_EQ(a_.get({"HGET", "stats", "sent"}), "3");
  EXPECT_EQ(a_.get({"HGET", "stats", "deferred"}), "2");
  EXPECT_EQ(a_.get({"HGET", "stats", "retried"}), "1");
  EXPECT_EQ(a_.get({"HGET", "stats", "failed"}), "2");
  EXPECT_EQ(a_.get({"HGET", "stats:minute:29000000", "out"}), "3");
  EXPECT_GT(a_.run({"TTL", "stats:minute:29000000"}).integer(), 0);
}

// A sent message writes the attempts the claim read plus one, without an HINCRBY, and drops a
// reason only when the claim saw one; a batch's events continue the property's seq one by one.
TEST_F(FinishLua, ASentMessageWritesTheClaimsAttemptsAndItsEventsContinueTheSeq) {
  std::vector<outcome> batch = {make("sent", "m1", 5, "+4915100000001", "wamid.1"),
                                make("sent", "m2", 5, "+4915100000002", "wamid.2"),
                                make("sent", "m3", 5, "+4915100000003", "wamid.3")};
  batch[0].args[13] = "3";  // its third attempt; no reason to drop
  batch[0].args[14] = "0";
  batch[1].args[13] = "2";  // a reason of its first attempt to drop
  batch[1].args[14] = "1";
  for (const auto& o : batch) a_.run({"LPUSH", "processing", o.args[1]});
  a_.run({"HSET", "message:m1", "status", "queued", "attempts", "2"});
  a_.run({"HSET", "message:m2", "status", "queued", "attempts", "1", "reason", "timeout",
          "error_code", "504"});
  a_.run({"SET", "property:hotel-berlin:seq", "41"});
  a_.run({"XADD", "property:hotel-berlin:events", "41-0", "event", "{}"});
  const auto r = run(a_, batch);
  ASSERT_TRUE(r.is_array() && r.elements().size() == 3) << r.to_string();
  for (const auto& e : r.elements()) EXPECT_EQ(e.integer(), 1) << r.to_string();
  EXPECT_EQ(a_.get({"HGET", "message:m1", "attempts"}), "3");
  EXPECT_EQ(a_.get({"HGET", "message:m1", "status"}), "sent");
  EXPECT_EQ(a_.get({"HGET", "message:m2", "attempts"}), "2");
  EXPECT_EQ(a_.get({"HEXISTS", "message:m2", "reason"}), "0");
  EXPECT_EQ(a_.get({"HEXISTS", "message:m2", "error_code"}), "0");
  EXPECT_EQ(a_.get({"HGET", "message:m3", "attempts"}), "1");
  EXPECT_EQ(a_.get({"GET", "property:hotel-berlin:seq"}), "44");
  const auto events = a_.run({"XRANGE", "property:hotel-berlin:events", "-", "+"});
  std::vector<std::string> ids;
  for (const auto& e : events.elements()) ids.push_back(e.elements()[0].str());
  EXPECT_EQ(ids, (std::vector<std::string>{"41-0", "42-0", "43-0", "44-0"}));
  EXPECT_NE(events.elements()[3].elements()[1].elements()[1].str().find(R"({"seq":44,)"),
            std::string::npos);
}

TEST_F(FinishLua, ABatchRunAgainAfterItsReplyWasLostCountsNothingTwice) {
  const auto outcomes = mixed();
  take(a_, outcomes);
  run(a_, outcomes, 7);
  const auto before = dump(a_);
  const auto again = run(a_, outcomes, 7);
  ASSERT_TRUE(again.is_array()) << again.to_string();
  EXPECT_TRUE(again.elements().empty()) << again.to_string();
  EXPECT_EQ(dump(a_), before);
  // Under a new number (an earlier version's way: each element checks the processing list),
  // still nothing twice.
  const auto renumbered = run(a_, outcomes, 8);
  ASSERT_TRUE(renumbered.is_array()) << renumbered.to_string();
  for (const auto& e : renumbered.elements()) EXPECT_EQ(e.integer(), 0) << renumbered.to_string();
  EXPECT_EQ(dump(a_), before);
}

// A message put back by a batch (a limit refused it) may be claimed again before the batch,
// whose answer was lost, runs again: the second run must not take the message now in flight
// off the processing list and put it back a second time (it would be sent twice). Nor does a
// batch that reaches Redis after a later one change anything.
TEST_F(FinishLua, ABatchRunAgainDoesNotPutBackAMessageClaimedAgainMeanwhile) {
  const std::vector<outcome> batch = {make("requeue", "m1", 5, "+4915100000001")};
  take(a_, batch);
  run(a_, batch, 11);
  const auto& message = batch[0].args[1];
  ASSERT_EQ(a_.run({"ZSCORE", "ready", message}).str(), "5000000000000");
  // Claimed again: out of the ready set, into the processing list, being sent.
  a_.run({"ZREM", "ready", message});
  a_.run({"LPUSH", "processing", message});
  const auto before = dump(a_);
  run(a_, batch, 11);
  EXPECT_EQ(dump(a_), before) << "the message in flight stays there, and only there";
  run(a_, {make("defer", "m2", 5, "+4915100000002")}, 12);
  run(a_, batch, 11);  // late
  EXPECT_EQ(a_.run({"LRANGE", "processing", "0", "-1"}).to_string(),
            broker::reply::make_array({broker::reply::make_string(message)}).to_string());
  EXPECT_EQ(a_.run({"ZCARD", "ready"}).integer(), 0);
}

// The marks' key holding another type (nothing of Bellhop's writes one) costs the guard, never
// the batch: its outcomes are recorded, and a re-run still records nothing twice.
TEST_F(FinishLua, AMarksKeyOfAnotherTypeDoesNotStopTheBatch) {
  const std::vector<outcome> batch = {make("sent", "m1", 5, "+4915100000001", "wamid.1")};
  take(a_, batch);
  a_.run({"LPUSH", "calls", "not a hash"});
  const auto r = run(a_, batch, 21);
  ASSERT_TRUE(r.is_array()) << r.to_string();
  ASSERT_EQ(r.elements().size(), 1u);
  EXPECT_EQ(r.elements()[0].integer(), 1);
  EXPECT_EQ(a_.get({"HGET", "message:m1", "status"}), "sent");
  EXPECT_EQ(a_.run({"LLEN", "processing"}).integer(), 0);
  const auto before = dump(a_);
  const auto again = run(a_, batch, 21);
  ASSERT_TRUE(again.is_array()) << again.to_string();
  for (const auto& e : again.elements()) EXPECT_EQ(e.integer(), 0) << again.to_string();
  EXPECT_EQ(dump(a_), before);
}

TEST_F(FinishLua, AnElementThatFailsFailsAloneAndTheOthersAreRecorded) {
  std::vector<outcome> batch = {make("sent", "m1", 5, "+4915100000001", "wamid.1"),
                                make("retry", "m2", 5, "+4915100000002"),
                                make("sent", "m3", 5, "+4915100000003", "wamid.3")};
  take(a_, batch);
  a_.run({"DEL", "message:m2"});
  a_.run({"SET", "message:m2", "not a hash"});
  const auto r = run(a_, batch);
  ASSERT_TRUE(r.is_array() && r.elements().size() == 3) << r.to_string();
  EXPECT_EQ(r.elements()[0].integer(), 1);
  EXPECT_TRUE(r.elements()[1].is_string()) << r.to_string();
  EXPECT_NE(r.elements()[1].str().find("WRONGTYPE"), std::string::npos) << r.to_string();
  EXPECT_EQ(r.elements()[2].integer(), 1);
  EXPECT_EQ(a_.get({"HGET", "message:m3", "status"}), "sent");
  EXPECT_EQ(a_.get({"HGET", "stats", "sent"}), "2");
  EXPECT_EQ(a_.get({"HGET", "stats", "retried"}), "<nil>");
  // Its record could not be written, but the message itself is not lost: it left the
  // processing list for the delayed set, due when its retry is.
  EXPECT_EQ(a_.get({"ZSCORE", "delayed", batch[1].args[1]}), "1800000060000");
  EXPECT_EQ(a_.run({"LLEN", "processing"}).integer(), 0);
}

TEST_F(FinishLua, ABatchThatIsNotWholeElementsIsRefusedBeforeItChangesAnything) {
  auto batch = mixed();
  take(a_, batch);
  const auto before = dump(a_);
  broker::command cmd = {"EVAL",  std::string(lua::outbound_finish),
                         "12",    "processing",
                         "stats", "delayed",
                         "dead",  "ready",
                         "calls"};
  cmd.insert(cmd.end(), batch[0].keys.begin(), batch[0].keys.end());
  cmd.insert(cmd.end(), {"604800", "1000", "7200", "1"});
  cmd.insert(cmd.end(), batch[0].args.begin(), batch[0].args.end() - 1);  // one short
  EXPECT_TRUE(a_.try_run(std::move(cmd)).is_error());
  EXPECT_EQ(dump(a_), before);
}

}  // namespace
}  // namespace bellhop::gateway
