// The escalation (dashboard/src/escalator.cpp, dashboard/lua/escalate.lua) on a real
// redis-server, with the time of each pass given: a guest who waits for staff longer than the
// property's escalation.after_s notifies its contact once (email and SMS on the outbound
// queues, a conversation.updated event "escalated"); not before, not when staff read first,
// and not again until staff read or answer.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <boost/asio/any_io_executor.hpp>
#include <future>
#include <string>

#include "bellhop/dashboard/conversation_state.hpp"
#include "bellhop/dashboard/escalator.hpp"
#include "support/io_thread.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using std::chrono::milliseconds;

const std::string cid = "c_0123456789abcdef0123456789abcdef";
const auto t0 = std::chrono::system_clock::time_point(milliseconds(1796467770000));

class Escalation : public ::testing::Test {
 protected:
  Escalation() {
    svc_.redis =
        std::make_unique<broker::broker>(test::fast_broker_options(redis_.unix_endpoint()));
    svc_.redis->start();
    property p;
    p.id = "hotel-berlin";
    p.name = "Hotel Berlin";
    p.escalation = escalation_contact{300, "manager@hotel-berlin.example", "+4930999999"};
    escalations_ = std::make_unique<escalator>(io_.executor(), svc_, keys_, options_,
                                               std::vector<property>{p}, metrics_);
  }
  ~Escalation() override {
    escalations_.reset();
    svc_.redis->stop();
    io_.drain();
  }

  int tick(milliseconds after_t0) {
    std::promise<int> p;
    escalations_->tick(t0 + after_t0, [&p](int n) { p.set_value(n); });
    return p.get_future().get();
  }
  std::string change(const std::string& what) {
    std::promise<std::string> p;
    conversation_writer writer(svc_, keys_, options_);
    writer.change({"hotel-berlin", cid, what, "frontdesk", "", "", ""}, io_.executor(),
                  [&p](contract::conversation_change_result r) {
                    p.set_value(r.error_code.empty() ? "ok" : r.error_code);
                  });
    return p.get_future().get();
  }

  std::uint64_t counted(std::string_view name) {
    return metrics_.add_counter(name, "").labels({}).value();
  }

  // A conversation with staff whose guest wrote at t0 (what ingest.lua leaves).
  void guest_waits_since_t0() {
    client_.run({"HSET", "conversation:" + cid, "conversation_id", cid, "property_id",
                 "hotel-berlin", "channel", "whatsapp", "guest", "+4915112345678", "mode", "human",
                 "unread", "1"});
    client_.run({"HSET", "property:hotel-berlin:unread", cid, "1"});
    client_.run({"ZADD", "property:hotel-berlin:escalation", "1796467770000", cid});
  }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
  test::io_thread io_;
  metrics_registry metrics_;
  services svc_;
  contract::key_space keys_;
  dashboard_options options_;
  std::unique_ptr<escalator> escalations_;
};

TEST_F(Escalation, FiresOnceAfterTheConfiguredTime) {
  guest_waits_since_t0();
  EXPECT_EQ(tick(milliseconds(299000)), 0) << "not before after_s";
  EXPECT_EQ(client_.get({"LLEN", "outbound:email"}), "0");
  EXPECT_EQ(tick(milliseconds(300000)), 1);
  ASSERT_EQ(client_.get({"LLEN", "outbound:email"}), "1");
  ASSERT_EQ(client_.get({"LLEN", "outbound:sms"}), "1");
  rapidjson::Document mail;
  mail.Parse(client_.get({"LINDEX", "outbound:email", "0"}).c_str());
  ASSERT_TRUE(mail.IsObject());
  EXPECT_STREQ(mail["to"].GetString(), "manager@hotel-berlin.example");
  EXPECT_STREQ(mail["property_id"].GetString(), "hotel-berlin");
  EXPECT_STREQ(mail["source"].GetString(), "staff");
  EXPECT_NE(std::string(mail["text"].GetString()).find("+4915112345678"), std::string::npos);
  rapidjson::Document sms;
  sms.Parse(client_.get({"LINDEX", "outbound:sms", "0"}).c_str());
  EXPECT_STREQ(sms["to"].GetString(), "+4930999999");
  // Idempotency keys are per property, not per channel: the two must differ, or the second
  // queued is dropped as a duplicate of the first.
  ASSERT_TRUE(mail["idempotency_key"].IsString() && sms["idempotency_key"].IsString());
  EXPECT_STRNE(mail["idempotency_key"].GetString(), sms["idempotency_key"].GetString());
  // The event, with seq, in the property's history.
  auto events = client_.run({"XRANGE", "property:hotel-berlin:events", "-", "+"});
  ASSERT_EQ(events.elements().size(), 1u);
  rapidjson::Document event;
  event.Parse(events.elements()[0].elements()[1].elements()[1].str().c_str());
  EXPECT_STREQ(event["event"].GetString(), "conversation.updated");
  EXPECT_STREQ(event["data"]["change"].GetString(), "escalated");
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "escalated_at"}), "1796468070000");
  EXPECT_EQ(counted("bellhop_escalations_total"), 1u);

  // Once: later passes, and a new guest message (ingest starts no wait while escalated_at is
  // set), notify nobody.
  EXPECT_EQ(tick(milliseconds(900000)), 0);
  EXPECT_EQ(client_.get({"LLEN", "outbound:email"}), "1");
  EXPECT_EQ(counted("bellhop_escalations_total"), 1u);
  EXPECT_EQ(counted("bellhop_escalation_errors_total"), 0u);

  // Read by staff: the next wait may escalate again.
  EXPECT_EQ(change("read"), "ok");
  EXPECT_EQ(client_.get({"HGET", "conversation:" + cid, "escalated_at"}), "<nil>");
}

TEST_F(Escalation, NotWhenStaffReadFirst) {
  guest_waits_since_t0();
  EXPECT_EQ(change("read"), "ok");
  EXPECT_EQ(client_.get({"ZCARD", "property:hotel-berlin:escalation"}), "0");
  EXPECT_EQ(tick(milliseconds(600000)), 0);
  EXPECT_EQ(client_.get({"LLEN", "outbound:email"}), "0");
  EXPECT_EQ(client_.get({"LLEN", "outbound:sms"}), "0");
}

TEST_F(Escalation, NotWhenReleasedOrAnsweredInBetween) {
  guest_waits_since_t0();
  // Answered: staff_reply.lua takes the conversation off the waiting set; the pass also
  // drops an entry whose conversation is no longer with staff or has nothing unread.
  client_.run({"HSET", "conversation:" + cid, "unread", "0"});
  EXPECT_EQ(tick(milliseconds(600000)), 0);
  EXPECT_EQ(client_.get({"ZCARD", "property:hotel-berlin:escalation"}), "0");
  guest_waits_since_t0();
  EXPECT_EQ(change("release"), "ok");
  EXPECT_EQ(tick(milliseconds(600000)), 0);
  EXPECT_EQ(client_.get({"LLEN", "outbound:email"}), "0");
}

// Redis gone: the pass reports -1 and counts a failed pass (docs/properties.md, "Escalation").
TEST_F(Escalation, APassWithoutRedisIsCountedAsAnError) {
  guest_waits_since_t0();
  redis_.stop();
  EXPECT_EQ(tick(milliseconds(300000)), -1);
  EXPECT_EQ(tick(milliseconds(301000)), -1);
  EXPECT_EQ(counted("bellhop_escalation_errors_total"), 2u);
  EXPECT_EQ(counted("bellhop_escalations_total"), 0u);
}

TEST_F(Escalation, AHandoffWithUnreadMessagesStartsTheWait) {
  client_.run({"HSET", "conversation:" + cid, "conversation_id", cid, "property_id", "hotel-berlin",
               "channel", "whatsapp", "guest", "+4915112345678", "unread", "2"});
  EXPECT_EQ(change("handoff"), "ok");
  EXPECT_NE(client_.get({"ZSCORE", "property:hotel-berlin:escalation", cid}), "<nil>");
}

}  // namespace
}  // namespace bellhop::gateway
