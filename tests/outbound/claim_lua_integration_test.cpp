// outbound_claim.lua and quiet hours on a real redis-server: which messages the claim holds
// (bulk ones of a property inside its quiet hours), where they wait, what their record says,
// and how they come back when the quiet hours end (docs/outbound.md, "Quiet hours").
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bellhop/outbound/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

constexpr long long now = 1'800'000'000'000;  // epoch ms
constexpr long long quiet_end = now + 60'000;

std::string message(const std::string& id, int priority, const std::string& property) {
  return R"({"id":")" + id + R"(","priority":)" + std::to_string(priority) + R"(,"property_id":")" +
         property + R"(","channel":"whatsapp","to":"+4915100000001","text":"x"})";
}

class ClaimLua : public ::testing::Test {
 protected:
  // Files a message as the intake does: in the ready set, with a `queued` record.
  void file(const std::string& id, int priority, const std::string& property) {
    client_.run({"ZADD", "ready", std::to_string(priority * 1'000'000'000'000LL + ++arrivals_),
                 message(id, priority, property)});
    client_.run({"HSET", "message:" + id, "id", id, "status", "queued"});
  }

  struct claimed {
    long long held = 0;
    std::vector<std::string> ids;         // taken to send
    std::vector<long long> last_inbound;  // each one's guest's last message (-1 unknown)
  };
  // The claim at `at` with room for `room` sends; `quiet`: property ids inside their quiet
  // hours (until quiet_end).
  // `conversation_prefix` "": the dispatcher needs no conversation (no window, one account).
  claimed claim(long long at, int room, const std::vector<std::string>& quiet, int max_held = 1000,
                const std::string& conversations = "",
                const std::string& conversation_prefix = "conversation:", long long unsure = 0) {
    broker::command cmd = {"EVAL",
                           std::string(lua::outbound_claim),
                           "8",
                           "ready",
                           "processing",
                           "delayed",
                           "paused",
                           "arrivals",
                           "quiet",
                           "stats",
                           "calls",
                           std::to_string(at),
                           "100",
                           std::to_string(room),
                           "message:",
                           "",
                           std::to_string(max_held),
                           conversation_prefix,
                           conversations.empty() ? "0" : "1",  // the service window
                           std::to_string(++calls_),
                           std::to_string(unsure)};
    for (const auto& pid : quiet) {
      cmd.push_back(pid);
      cmd.push_back(std::to_string(quiet_end));
      cmd.push_back("2027-01-15T08:00:00.000Z");
    }
    const auto r = client_.run(std::move(cmd));
    claimed out;
    const auto& e = r.elements();
    last_reply_ = r;
    EXPECT_TRUE(r.is_array() && e.size() >= 3) << r.to_string();
    if (!r.is_array() || e.size() < 3) return out;
    out.held = e[2].integer();
    for (std::size_t i = 3; i + 4 < e.size(); i += 5) {
      const auto& json = e[i].str();
      out.ids.push_back(json.substr(7, json.find('"', 7) - 7));
      out.last_inbound.push_back(e[i + 2].integer());
    }
    return out;
  }

  std::string field(const std::string& id, const std::string& name) {
    const auto r = client_.run({"HGET", "message:" + id, name});
    return r.is_string() ? r.str() : "<nil>";
  }

  reply last_reply_;
  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
  long long arrivals_ = 0;
  long long calls_ = 0;  // the claims' numbers
};

// A claim whose answer was lost (the process never learned what it took) is made good by the
// next: it hands those messages back to the ready set, at the front of their priority, and
// claims again; a lost claim that reaches Redis after a later one does nothing.
// The marks' key holding another type (nothing of Bellhop's writes one) costs the marks, never
// the claim: messages are still taken.
TEST_F(ClaimLua, AMarksKeyOfAnotherTypeDoesNotStopTheClaim) {
  for (int i = 0; i < 2; ++i) file("m" + std::to_string(i), 5, "hotel-berlin");
  client_.run({"LPUSH", "calls", "not a hash"});
  const auto c = claim(now, 8, {}, 1000, "", "conversation:", 1);
  EXPECT_EQ(c.ids, (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(client_.run({"LLEN", "processing"}).integer(), 2);
  EXPECT_EQ(client_.run({"TYPE", "calls"}).str(), "list");
}

TEST_F(ClaimLua, WhatALostClaimTookTheNextHandsBackAndALateOneTakesNothing) {
  for (int i = 0; i < 4; ++i) file("m" + std::to_string(i), 5, "hotel-berlin");
  client_.run({"LPUSH", "processing", "in flight elsewhere"});
  const auto lost = claim(now, 3, {});  // call 1: its answer "lost"
  ASSERT_EQ(lost.ids.size(), 3u);
  EXPECT_EQ(client_.run({"LLEN", "processing"}).integer(), 4);
  EXPECT_EQ(client_.run({"HGET", "calls", "claim"}).str(), "1 3");

  // Call 2 knows call 1 may have run: it hands back m0..m2 and takes 2 by priority and
  // arrival, m0 and m1 again (back at the front), now known to the process.
  const auto next = claim(now, 2, {}, 1000, "", "conversation:", 1);
  EXPECT_EQ(next.ids, (std::vector<std::string>{"m0", "m1"}));
  const auto processing = client_.run({"LRANGE", "processing", "0", "-1"});
  ASSERT_EQ(processing.elements().size(), 3u) << processing.to_string();
  EXPECT_EQ(processing.elements()[2].str(), "in flight elsewhere") << "untouched";
  const auto ready = client_.run({"ZRANGE", "ready", "0", "-1"});
  ASSERT_EQ(ready.elements().size(), 2u);
  EXPECT_NE(ready.elements()[0].str().find("\"m2\""), std::string::npos) << ready.to_string();
  EXPECT_NE(ready.elements()[1].str().find("\"m3\""), std::string::npos) << ready.to_string();
  EXPECT_EQ(client_.run({"HGET", "calls", "claim"}).str(), "2 2");

  // Call 1 again, as if it reached Redis only now: nothing moves.
  calls_ = 0;
  const auto late = claim(now, 3, {});
  EXPECT_TRUE(late.ids.empty());
  EXPECT_EQ(client_.run({"LLEN", "processing"}).integer(), 3);
  EXPECT_EQ(client_.run({"ZCARD", "ready"}).integer(), 2);
  EXPECT_EQ(client_.run({"HGET", "calls", "claim"}).str(), "2 2");
}

TEST_F(ClaimLua, BulkMessagesOfAQuietPropertyWaitRepliesAndOtherPropertiesGo) {
  file("bulk-quiet", 7, "hotel-berlin");
  file("normal-quiet", 5, "hotel-berlin");
  file("reply-quiet", 4, "hotel-berlin");
  file("bulk-other", 10, "hotel-lisbon");
  const auto c = claim(now, 8, {"hotel-berlin"});
  EXPECT_EQ(c.held, 2);
  EXPECT_EQ(c.ids, (std::vector<std::string>{"reply-quiet", "bulk-other"}));
  for (const std::string id : {"bulk-quiet", "normal-quiet"}) {
    EXPECT_EQ(field(id, "status"), "delayed");
    EXPECT_EQ(field(id, "reason"), "quiet_hours");
    EXPECT_EQ(field(id, "due_at"), "2027-01-15T08:00:00.000Z");
    EXPECT_EQ(client_.run({"ZSCORE", "quiet", id}).str(), std::to_string(quiet_end));
  }
  EXPECT_EQ(field("reply-quiet", "status"), "queued");
  EXPECT_EQ(client_.run({"ZCARD", "delayed"}).integer(), 2);
  EXPECT_EQ(client_.run({"ZCARD", "ready"}).integer(), 0);
  EXPECT_EQ(client_.run({"HGET", "stats", "quiet_held"}).str(), "2");
}

TEST_F(ClaimLua, WhenTheQuietHoursEndTheMessageIsQueuedAgainAndSent) {
  file("bulk", 7, "hotel-berlin");
  ASSERT_EQ(claim(now, 1, {"hotel-berlin"}).held, 1);
  // Still quiet a second later: it stays where it is.
  auto c = claim(now + 1000, 1, {"hotel-berlin"});
  EXPECT_EQ(c.held, 0);
  EXPECT_TRUE(c.ids.empty());
  // The end: promoted, taken, its record queued again without the reason.
  c = claim(quiet_end, 1, {});
  EXPECT_EQ(c.ids, std::vector<std::string>{"bulk"});
  EXPECT_EQ(field("bulk", "status"), "queued");
  EXPECT_EQ(field("bulk", "reason"), "<nil>");
  EXPECT_EQ(field("bulk", "due_at"), "<nil>");
  EXPECT_EQ(client_.run({"ZCARD", "quiet"}).integer(), 0);
  EXPECT_EQ(client_.run({"ZCARD", "delayed"}).integer(), 0);
}

TEST_F(ClaimLua, HoldsAtMostTheCapPerCallAndTakesTheRoomItHas) {
  for (int i = 0; i < 5; ++i) file("bulk-" + std::to_string(i), 7, "hotel-berlin");
  file("other-bulk", 9, "hotel-lisbon");
  auto c = claim(now, 1, {"hotel-berlin"}, 3);
  EXPECT_EQ(c.held, 3);
  EXPECT_TRUE(c.ids.empty());
  c = claim(now, 1, {"hotel-berlin"}, 3);
  EXPECT_EQ(c.held, 2);
  EXPECT_EQ(c.ids, std::vector<std::string>{"other-bulk"});
  EXPECT_EQ(client_.run({"ZCARD", "quiet"}).integer(), 5);
}

TEST_F(ClaimLua, AnIdLeftBehindAnHourAfterItsQuietHoursIsForgotten) {
  // Promoted by a process that knows no quiet hours: the id stays in the quiet set.
  client_.run({"ZADD", "quiet", std::to_string(quiet_end), "gone"});
  claim(quiet_end + 3'599'000, 1, {});
  EXPECT_EQ(client_.run({"ZCARD", "quiet"}).integer(), 1);
  claim(quiet_end + 3'601'000, 1, {});
  EXPECT_EQ(client_.run({"ZCARD", "quiet"}).integer(), 0);
}

// The service window's input: the conversation's last_inbound_at, or for a conversation from
// before it was written, the received_at of its newest guest message.
TEST_F(ClaimLua, TheGuestsLastMessageComesWithEachWhatsAppMessage) {
  file("new", 3, "hotel-berlin");
  file("legacy", 3, "hotel-berlin");
  file("none", 3, "hotel-berlin");
  file("unknown", 3, "hotel-berlin");
  client_.run({"HSET", "message:new", "conversation_id", "c_new"});
  client_.run({"HSET", "message:legacy", "conversation_id", "c_old"});
  client_.run({"HSET", "message:unknown", "conversation_id", "c_gone"});
  client_.run({"HSET", "conversation:c_new", "last_inbound_at", "1799999990000"});
  client_.run({"HSET", "conversation:c_old", "guest", "+4915100000001"});
  client_.run(
      {"RPUSH", "conversation:c_old:messages",
       R"({"direction":"outbound","text":"newer staff reply","created_at":"2026-11-23T00:00:00Z"})",
       R"({"direction":"inbound","text":"hi","received_at":"2026-11-22T10:00:00.123Z"})",
       R"({"direction":"inbound","text":"older","received_at":"2024-02-29T23:59:59Z"})"});
  const auto c = claim(now, 8, {}, 1000, "conversation:");
  ASSERT_EQ(c.ids, (std::vector<std::string>{"new", "legacy", "none", "unknown"}));
  EXPECT_EQ(c.last_inbound, (std::vector<long long>{1'799'999'990'000, 1'795'341'600'123, -1, -1}));
}

// A lane that needs neither the window nor the guest's account reads no conversation; the
// messages taken go into the processing list in the order taken (the oldest at the tail).
TEST_F(ClaimLua, WithoutAConversationPrefixNoConversationIsReadAndTheListKeepsTheOrder) {
  for (int i = 0; i < 5; ++i) file("m" + std::to_string(i), 5, "hotel-berlin");
  client_.run({"HSET", "message:m0", "conversation_id", "c_new", "attempts", "2"});
  client_.run({"HSET", "message:m1", "error_code", "500"});
  client_.run({"HSET", "message:m2", "reason", "gave up"});
  client_.run({"HSET", "conversation:c_new", "last_inbound_at", "1799999990000", "account", "77"});
  const auto c = claim(now, 8, {}, 1000, "window", "");
  ASSERT_EQ(c.ids, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4"}));
  EXPECT_EQ(c.last_inbound, (std::vector<long long>(5, -1)));
  const auto& e = last_reply_.elements();
  ASSERT_EQ(e.size(), 3u + 5 * 5);
  EXPECT_EQ(e[4].integer(), 2) << "the attempts are still read";
  EXPECT_EQ(e[6].str(), "") << "no account read";
  // Whether the record has a reason or an error_code for the finish to drop.
  for (std::size_t m = 0; m < 5; ++m)
    EXPECT_EQ(e[3 + 5 * m + 4].integer(), m == 1 || m == 2 ? 1 : 0) << m;
  std::vector<std::string> listed;
  const auto processing = client_.run({"LRANGE", "processing", "0", "-1"});
  for (const auto& m : processing.elements()) listed.push_back(m.str().substr(7, 2));
  EXPECT_EQ(listed, (std::vector<std::string>{"m4", "m3", "m2", "m1", "m0"}));
  // With the prefix, the same message comes with its conversation's account and window.
  client_.run({"DEL", "processing"});
  file("m0", 5, "hotel-berlin");
  const auto again = claim(now, 8, {}, 1000, "window");
  ASSERT_EQ(again.ids, std::vector<std::string>{"m0"});
  EXPECT_EQ(again.last_inbound, std::vector<long long>{1'799'999'990'000});
  EXPECT_EQ(last_reply_.elements()[6].str(), "77");
}

// Records read back are hostile: one that is not a hash, or whose attempts are not a number,
// reads as a first attempt, and every message taken is in the processing list and in the reply.
TEST_F(ClaimLua, AnUnreadableRecordCountsAsAFirstAttemptAndLosesNoMessage) {
  for (const std::string id : {"m0", "m1", "m2"}) file(id, 5, "hotel-berlin");
  client_.run({"DEL", "message:m1"});
  client_.run({"SET", "message:m1", "not a hash"});
  client_.run({"HSET", "message:m2", "attempts", "many"});
  for (const std::string prefix : {"", "conversation:"}) {
    const auto c = claim(now, 8, {}, 1000, "", prefix);
    ASSERT_EQ(c.ids, (std::vector<std::string>{"m0", "m1", "m2"})) << last_reply_.to_string();
    const auto& e = last_reply_.elements();
    for (std::size_t i = 4; i < e.size(); i += 5) EXPECT_EQ(e[i].integer(), 0) << i;
    EXPECT_EQ(client_.get({"LLEN", "processing"}), "3");
    client_.run({"DEL", "processing"});
    for (const std::string id : {"m0", "m1", "m2"})
      client_.run({"ZADD", "ready", std::to_string(5'000'000'000'000LL + ++arrivals_),
                   message(id, 5, "hotel-berlin")});
  }
}

// A bulk message held for quiet hours whose record is not a hash: still held (in the delayed
// set), and the messages popped before it are taken, none lost.
TEST_F(ClaimLua, AQuietHoldOfAnUnreadableRecordLosesNoMessage) {
  file("reply", 3, "hotel-berlin");
  file("bulk", 7, "hotel-berlin");
  client_.run({"DEL", "message:bulk"});
  client_.run({"SET", "message:bulk", "not a hash"});
  const auto c = claim(now, 8, {"hotel-berlin"});
  EXPECT_EQ(c.ids, (std::vector<std::string>{"reply"})) << last_reply_.to_string();
  EXPECT_EQ(c.held, 1);
  EXPECT_EQ(client_.get({"LLEN", "processing"}), "1");
  EXPECT_EQ(client_.get({"ZSCORE", "delayed", message("bulk", 7, "hotel-berlin")}),
            std::to_string(quiet_end));
}

}  // namespace
}  // namespace bellhop::gateway
