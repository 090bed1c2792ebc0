// inbound/lua/ingest.lua and conversation state on a real redis-server: every guest message
// writes last_inbound_at and counts unread; the envelope queued, stored and published says the
// conversation's mode; a message whose event cannot be written is taken back out of the queue
// by the envelope as queued.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "bellhop/inbound/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

const std::string cid = "c_0123456789abcdef0123456789abcdef";

class IngestConversationState : public ::testing::Test {
 protected:
  static std::string envelope(const std::string& id) {
    return R"({"id":")" + id +
           R"(","property_id":"p","channel":"whatsapp","text":"hi",)"
           R"("conversation_id":")" +
           cid + R"(","direction":"inbound","conversation_mode":"ai"})";
  }

  // One message through ingest.lua, as ingest_batcher sends it.
  reply ingest(const std::string& id, const std::string& ms) {
    return client_.run({"EVAL",
                        std::string(lua::ingest),
                        "11",
                        "inbound:messages",
                        "dedup:p:whatsapp:" + id,
                        "message:" + id,
                        "property:p:seq",
                        "property:p:events",
                        "property:p:conversation_index",
                        "conversation:" + cid,
                        "conversation:" + cid + ":messages",
                        "dedup:whatsapp:" + id,
                        "property:p:unread",
                        "property:p:escalation",
                        "3600",
                        "3600",
                        "100",
                        "2592000",
                        "50",
                        "message:",
                        "0",  // no rate-limit keys
                        id,
                        envelope(id),
                        "property:p:conversations",
                        "p",
                        "whatsapp",
                        cid,
                        "2026-12-05T10:00:00.000Z",
                        ms,
                        "+4915112345678",
                        "",     // guest name
                        "",     // account
                        "0"});  // not rate limited
  }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
};

TEST_F(IngestConversationState, EachMessageCountsUnreadAndTheEnvelopeSaysTheMode) {
  auto r = ingest("01JDQ0000000000000000000A1", "1796467770000");
  ASSERT_TRUE(r.is_array()) << r.to_string();
  EXPECT_EQ(r.elements()[0].elements()[0].integer(), 1) << r.to_string();
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "unread"}), "1");
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "last_inbound_at"}), "1796467770000");
  EXPECT_EQ(client_.get({"HGET", "property:p:unread", cid}), "1");
  EXPECT_EQ(client_.get({"LINDEX", "inbound:messages", "0"}),
            envelope("01JDQ0000000000000000000A1"));

  client_.run({"HSET", "conversation:" + cid, "mode", "human"});
  ingest("01JDQ0000000000000000000A2", "1796467771000");
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "unread"}), "2");
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "last_inbound_at"}), "1796467771000");
  EXPECT_EQ(client_.get({"HGET", "property:p:unread", cid}), "2");
  std::string human = envelope("01JDQ0000000000000000000A2");
  human.replace(human.find("\"ai\"}"), 5, "\"human\"}");
  EXPECT_EQ(client_.get({"LINDEX", "inbound:messages", "0"}), human);
  EXPECT_EQ(client_.get({"LINDEX", "conversation:" + cid + ":messages", "0"}), human);
  auto events = client_.run({"XRANGE", "property:p:events", "2-0", "2-0"});
  ASSERT_EQ(events.elements().size(), 1u);
  rapidjson::Document event;
  event.Parse(events.elements()[0].elements()[1].elements()[1].str().c_str());
  ASSERT_TRUE(event.IsObject());
  EXPECT_STREQ(event["data"]["conversation_mode"].GetString(), "human");
}

// With staff, the first unanswered message starts the guest's wait (escalation); later ones
// keep its start; once escalated, no new wait starts until staff read or answer.
TEST_F(IngestConversationState, WithStaffTheFirstUnansweredMessageStartsTheWait) {
  ingest("01JDQ0000000000000000000C1", "1796467770000");
  EXPECT_EQ(client_.get({"ZCARD", "property:p:escalation"}), "0")
      << "no wait while the engine answers";
  client_.run({"HSET", "conversation:" + cid, "mode", "human"});
  ingest("01JDQ0000000000000000000C2", "1796467771000");
  ingest("01JDQ0000000000000000000C3", "1796467772000");
  EXPECT_EQ(client_.get({"ZSCORE", "property:p:escalation", cid}), "1796467771000");
  client_.run({"ZREM", "property:p:escalation", cid});
  client_.run({"HSET", "conversation:" + cid, "escalated_at", "1796467773000"});
  ingest("01JDQ0000000000000000000C4", "1796467774000");
  EXPECT_EQ(client_.get({"ZCARD", "property:p:escalation"}), "0");
}

TEST_F(IngestConversationState, AMessageWhoseEventIsRefusedLeavesTheQueueAsItWas) {
  client_.run({"HSET", "conversation:" + cid, "mode", "human", "property_id", "p"});
  client_.run({"SET", "property:p:events", "not a stream"});
  auto r = ingest("01JDQ0000000000000000000B1", "1796467770000");
  ASSERT_TRUE(r.is_array()) << r.to_string();
  EXPECT_EQ(r.elements()[0].elements()[0].integer(), -1) << r.to_string();
  EXPECT_EQ(client_.get({"LLEN", "inbound:messages"}), "0")
      << "the human envelope was taken back out";
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "unread"}), "<nil>");
}

}  // namespace
}  // namespace bellhop::gateway

namespace bellhop::gateway {
namespace {

// A conversation key Bellhop did not write (another type) does not lose the message: it is
// queued with mode ai, and only its later steps are reported refused.
TEST_F(IngestConversationState, AConversationKeyOfAnotherTypeStillQueuesTheMessage) {
  client_.run({"SET", "conversation:" + cid, "not a hash"});
  auto r = ingest("01JDQ0000000000000000000E1", "1796467770000");
  ASSERT_TRUE(r.is_array()) << r.to_string();
  EXPECT_EQ(r.elements()[0].elements()[0].integer(), 1) << r.to_string();
  EXPECT_EQ(client_.get({"LINDEX", "inbound:messages", "0"}),
            envelope("01JDQ0000000000000000000E1"));
}

}  // namespace
}  // namespace bellhop::gateway
