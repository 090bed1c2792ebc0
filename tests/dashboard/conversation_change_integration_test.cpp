// dashboard/lua/conversation_change.lua (with core/lua/fragments/conversation_state.lua) on a
// real redis-server: each change writes the record and one conversation.updated event, or
// nothing at all.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

#include "bellhop/dashboard/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

const std::string cid = "c_0123456789abcdef0123456789abcdef";

class ConversationChangeLua : public ::testing::Test {
 protected:
  std::string hget(const std::string& key, const std::string& field) {
    return client_.get({"HGET", key, field});
  }

  reply change(const std::string& what, const std::string& by, const std::string& reason,
               const std::string& confidence = "", const std::string& assignee = "",
               const std::string& property = "hotel-berlin", bool may_fail = false) {
    broker::command cmd = {"EVAL",
                           std::string(lua::conversation_change),
                           "5",
                           "conversation:" + cid,
                           "property:" + property + ":unread",
                           "property:" + property + ":seq",
                           "property:" + property + ":events",
                           "property:" + property + ":escalation",
                           cid,
                           property,
                           what,
                           by,
                           reason,
                           confidence,
                           assignee,
                           "1796467771000",
                           "2026-12-05T10:49:31.000Z",
                           "100",
                           "property:" + property + ":conversations"};
    return may_fail ? client_.try_run(std::move(cmd)) : client_.run(std::move(cmd));
  }

  // The record ingest.lua leaves after two guest messages.
  void seed() {
    client_.run({"HSET", "conversation:" + cid, "conversation_id", cid, "property_id",
                 "hotel-berlin", "channel", "whatsapp", "guest", "+4915112345678", "unread", "2",
                 "last_inbound_at", "1796467770000"});
    client_.run({"HSET", "property:hotel-berlin:unread", cid, "2"});
  }

  // The stored event of `seq`, parsed.
  rapidjson::Document stored(long long seq) {
    const auto n = std::to_string(seq);
    auto entries = client_.run({"XRANGE", "property:hotel-berlin:events", n + "-0", n + "-0"});
    rapidjson::Document d;
    if (entries.elements().size() != 1) return d;
    d.Parse(entries.elements()[0].elements()[1].elements()[1].str().c_str());
    return d;
  }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
};

TEST_F(ConversationChangeLua, AnUnknownOrOtherPropertysConversationIsNotFoundAndNothingWritten) {
  auto r = change("handoff", "engine", "why");
  ASSERT_TRUE(r.is_array()) << r.to_string();
  EXPECT_EQ(r.elements()[0].integer(), -1);
  EXPECT_EQ(r.elements()[1].str(), "not_found");
  seed();
  r = change("handoff", "engine", "why", "", "", "hotel-paris");
  EXPECT_EQ(r.elements()[0].integer(), -1);
  EXPECT_EQ(
      client_.run({"EXISTS", "property:hotel-paris:seq", "property:hotel-berlin:seq"}).integer(),
      0);
  EXPECT_EQ(hget("conversation:" + cid, "mode"), "<nil>");
}

TEST_F(ConversationChangeLua, HandoffReadAndReleaseWriteTheRecordAndOneEventEach) {
  seed();
  auto r = change("handoff", "engine", "asks for a \"refund\"\n", "0.35", "");
  ASSERT_TRUE(r.is_array() && r.elements().size() == 3) << r.to_string();
  EXPECT_EQ(r.elements()[1].integer(), 1);
  rapidjson::Document data;
  data.Parse(r.elements()[2].str().c_str());
  ASSERT_TRUE(data.IsObject()) << r.elements()[2].str();
  EXPECT_STREQ(data["mode"].GetString(), "human");
  EXPECT_STREQ(data["reason"].GetString(), "asks for a \"refund\"\n");
  EXPECT_DOUBLE_EQ(data["confidence"].GetDouble(), 0.35);
  EXPECT_TRUE(data["assignee"].IsNull());
  EXPECT_EQ(data["unread"].GetInt(), 2);
  EXPECT_EQ(data["last_inbound_at"].GetInt64(), 1796467770000);
  EXPECT_TRUE(data["read_at"].IsNull());
  EXPECT_STREQ(data["change"].GetString(), "handoff");
  EXPECT_STREQ(data["by"].GetString(), "engine");
  EXPECT_STREQ(data["guest"].GetString(), "+4915112345678");
  auto event = stored(1);
  ASSERT_TRUE(event.IsObject());
  EXPECT_STREQ(event["event"].GetString(), "conversation.updated");
  EXPECT_EQ(event["seq"].GetInt(), 1);
  EXPECT_TRUE(event["data"] == data) << "the event's data is the state answered";
  EXPECT_EQ(hget("conversation:" + cid, "mode"), "human");
  EXPECT_EQ(hget("conversation:" + cid, "mode_confidence"), "0.35");
  EXPECT_EQ(hget("conversation:" + cid, "mode_changed_at"), "1796467771000");

  r = change("read", "frontdesk", "");
  data.Parse(r.elements()[2].str().c_str());
  EXPECT_EQ(data["unread"].GetInt(), 0);
  EXPECT_EQ(data["read_at"].GetInt64(), 1796467771000);
  EXPECT_STREQ(data["reason"].GetString(), "asks for a \"refund\"\n") << "read keeps the reason";
  EXPECT_STREQ(data["mode"].GetString(), "human");
  EXPECT_EQ(hget("conversation:" + cid, "unread"), "0");
  EXPECT_EQ(client_.run({"HEXISTS", "property:hotel-berlin:unread", cid}).integer(), 0);

  r = change("release", "frontdesk", "");
  data.Parse(r.elements()[2].str().c_str());
  EXPECT_EQ(r.elements()[1].integer(), 3);
  EXPECT_STREQ(data["mode"].GetString(), "ai");
  EXPECT_FALSE(data.HasMember("confidence"));
  EXPECT_TRUE(data["reason"].IsNull());
  EXPECT_EQ(hget("conversation:" + cid, "mode_confidence"), "<nil>");
  EXPECT_EQ(hget("conversation:" + cid, "assignee"), "");
  EXPECT_EQ(client_.run({"XLEN", "property:hotel-berlin:events"}).integer(), 3);
}

TEST_F(ConversationChangeLua, AnEventThatCannotBeAppendedLeavesTheRecordAsItWas) {
  seed();
  client_.run({"SET", "property:hotel-berlin:events", "not a stream"});
  auto r = change("handoff", "engine", "why", "", "", "hotel-berlin", true);
  EXPECT_TRUE(r.is_error()) << r.to_string();
  EXPECT_EQ(hget("conversation:" + cid, "mode"), "<nil>");
  EXPECT_EQ(client_.run({"EXISTS", "property:hotel-berlin:seq"}).integer(), 0) << "no seq skipped";
}

}  // namespace
}  // namespace bellhop::gateway
