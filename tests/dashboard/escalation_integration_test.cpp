// Escalation (dashboard/lua/escalate.lua and the sweeper that runs it) against a real
// redis-server: who is escalated, once, and who is not.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "bellhop/dashboard/escalation.hpp"
#include "bellhop/dashboard/lua.hpp"
#include "support/io_thread.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
using broker::reply;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Escalation : public ::testing::Test {
 protected:
  Escalation() : keys_("") {
    server_.start();
    redis_ = std::make_unique<broker::broker>(test::fast_broker_options(server_.tcp_endpoint()));
    redis_->start();
    contact_.after_s = 60;
    contact_.email = "duty@hotel.example";
    contact_.sms = "+4930123456";
  }
  ~Escalation() override { redis_->stop(); }

  reply run(const std::vector<std::string>& cmd) {
    std::promise<reply> p;
    redis_->post(cmd, io_.executor(), [&p](error_code ec, reply r) {
      p.set_value(ec ? reply::make_error(ec.message()) : std::move(r));
    });
    return p.get_future().get();
  }

  // One pass of the script for `pid` at time `now`, as the sweeper runs it.
  reply pass(const std::string& pid, std::int64_t now) {
    std::promise<reply> p;
    redis_->eval(script_,
                 {keys_.property_conversations_index(pid), keys_.property_escalation_cursor(pid),
                  keys_.property_seq(pid), keys_.property_events(pid), keys_.outbound("email"),
                  keys_.outbound("sms")},
                 {pid, std::to_string(now), std::to_string(contact_.after_s * 1000),
                  contact_.email, contact_.sms, "1000", keys_.conversation(""),
                  "2026-12-05T10:00:00.000Z", "200", "Hotel Test", keys_.property_channel(pid),
                  "3600"},
                 io_.executor(), [&p](error_code ec, reply r) {
                   p.set_value(ec ? reply::make_error(ec.message()) : std::move(r));
                 });
    return p.get_future().get();
  }

  // A conversation of `pid` whose guest last wrote at `at`; its newest message is the guest's
  // unless `answered`.
  void conversation(const std::string& cid, const std::string& pid, std::int64_t at,
                    const std::string& mode = "human", bool answered = false,
                    const std::string& guest_name = "Ana") {
    run({"HSET", keys_.conversation(cid), "conversation_id", cid, "property_id", pid, "channel",
         "whatsapp", "guest", "+4915112345678", "guest_name", guest_name, "mode", mode,
         "last_inbound_at", std::to_string(at), "unread", "1"});
    run({"LPUSH", keys_.conversation_messages(cid),
         R"({"direction":"inbound","text":"Where are my towels?"})"});
    if (answered)
      run({"LPUSH", keys_.conversation_messages(cid),
           R"({"direction":"outbound","text":"On their way"})"});
    run({"ZADD", keys_.property_conversations_index(pid), std::to_string(at), cid});
  }

  std::int64_t length(const std::string& list) { return run({"LLEN", list}).integer(); }

  test::io_thread io_;
  test::redis_server server_;
  std::unique_ptr<broker::broker> redis_;
  contract::key_space keys_;
  escalation_contact contact_;
  broker::script script_ = broker::script::make("escalate", std::string(lua::escalate));
};

TEST_F(Escalation, AGuestWaitingForStaffIsEscalatedOnceByEmailAndSms) {
  const auto t0 = now_ms() - 120'000;  // waited two minutes; after_s is one
  conversation("c_wait", "hotel-a", t0);
  auto r = pass("hotel-a", now_ms());
  ASSERT_TRUE(r.is_array()) << r.to_string();
  ASSERT_EQ(r.elements().size(), 2u) << r.to_string();
  EXPECT_EQ(r.elements()[1].str(), "c_wait");

  ASSERT_EQ(length(keys_.outbound("email")), 1);
  ASSERT_EQ(length(keys_.outbound("sms")), 1);
  rapidjson::Document mail;
  mail.Parse(run({"LINDEX", keys_.outbound("email"), "0"}).str().c_str());
  ASSERT_TRUE(mail.IsObject());
  EXPECT_STREQ(mail["to"].GetString(), "duty@hotel.example");
  EXPECT_STREQ(mail["property_id"].GetString(), "hotel-a");
  EXPECT_EQ(mail["priority"].GetInt(), 1);
  EXPECT_NE(std::string(mail["text"].GetString()).find("Where are my towels?"), std::string::npos);
  EXPECT_NE(std::string(mail["text"].GetString()).find("Hotel Test"), std::string::npos);
  EXPECT_STREQ(mail["extras"]["subject"].GetString(), "Guest waiting for staff: Ana");
  rapidjson::Document sms;
  sms.Parse(run({"LINDEX", keys_.outbound("sms"), "0"}).str().c_str());
  EXPECT_STREQ(sms["to"].GetString(), "+4930123456");

  // The event: conversation.updated, change escalated, with seq 1.
  auto events = run({"XRANGE", keys_.property_events("hotel-a"), "-", "+"});
  ASSERT_EQ(events.elements().size(), 1u);
  rapidjson::Document ev;
  ev.Parse(events.elements()[0].elements()[1].elements()[1].str().c_str());
  ASSERT_TRUE(ev.IsObject());
  EXPECT_EQ(ev["seq"].GetInt(), 1);
  EXPECT_STREQ(ev["event"].GetString(), "conversation.updated");
  EXPECT_STREQ(ev["data"]["change"].GetString(), "escalated");
  EXPECT_STREQ(ev["data"]["conversation_id"].GetString(), "c_wait");
  EXPECT_EQ(ev["data"]["escalation"]["notified"].Size(), 2u);

  // Nothing more: not on the next pass, not on a later guest message.
  r = pass("hotel-a", now_ms());
  EXPECT_EQ(r.elements().size(), 1u) << r.to_string();
  const auto t1 = now_ms();
  conversation("c_wait", "hotel-a", t1);
  r = pass("hotel-a", t1 + 61'000);
  EXPECT_EQ(r.elements().size(), 1u) << r.to_string();
  EXPECT_EQ(length(keys_.outbound("email")), 1);

  // Answered (a staff reply clears escalated_at): the guest's next long wait is escalated again.
  run({"HSET", keys_.conversation("c_wait"), "escalated_at", "0"});
  conversation("c_wait", "hotel-a", t1 + 62'000);
  r = pass("hotel-a", t1 + 123'000);
  EXPECT_EQ(r.elements().size(), 2u) << r.to_string();
  EXPECT_EQ(length(keys_.outbound("email")), 2);
}

TEST_F(Escalation, ReadAnsweredWithTheEngineOrNotYetDueIsNotEscalated) {
  const auto waited = now_ms() - 120'000;
  conversation("c_read", "hotel-a", waited);
  run({"HSET", keys_.conversation("c_read"), "read_at", std::to_string(waited + 1000)});
  conversation("c_answered", "hotel-a", waited, "human", /*answered=*/true);
  conversation("c_ai", "hotel-a", waited, "ai");
  conversation("c_young", "hotel-a", now_ms() - 10'000);
  conversation("c_other", "hotel-b", waited);  // in a's index, but the record is b's
  run({"ZADD", keys_.property_conversations_index("hotel-a"), std::to_string(waited), "c_other"});
  auto r = pass("hotel-a", now_ms());
  ASSERT_TRUE(r.is_array()) << r.to_string();
  EXPECT_EQ(r.elements().size(), 1u) << r.to_string();
  EXPECT_EQ(length(keys_.outbound("email")), 0);
  EXPECT_EQ(run({"EXISTS", keys_.property_events("hotel-a")}).integer(), 0);

  // c_young comes due later and is escalated then.
  r = pass("hotel-a", now_ms() + 60'000);
  ASSERT_EQ(r.elements().size(), 2u) << r.to_string();
  EXPECT_EQ(r.elements()[1].str(), "c_young");
}

TEST_F(Escalation, AGuestNameCannotBreakTheMailHeader) {
  conversation("c_evil", "hotel-a", now_ms() - 120'000, "human", false,
               "Eve\r\nBcc: all@example.com");
  auto r = pass("hotel-a", now_ms());
  ASSERT_EQ(r.elements().size(), 2u) << r.to_string();
  rapidjson::Document mail;
  mail.Parse(run({"LINDEX", keys_.outbound("email"), "0"}).str().c_str());
  const std::string subject = mail["extras"]["subject"].GetString();
  EXPECT_EQ(subject.find('\r'), std::string::npos);
  EXPECT_EQ(subject.find('\n'), std::string::npos);
}

TEST_F(Escalation, TheSweeperRunsThePassForEachPropertyWithAContact) {
  conversation("c_wait", "hotel-a", now_ms() - 120'000);
  conversation("c_none", "hotel-b", now_ms() - 120'000);
  escalation_options o;
  property a;
  a.id = "hotel-a";
  a.escalation = contact_;
  property b;
  b.id = "hotel-b";  // no contact: never looked at
  o.properties = {a, b};
  o.interval = 20ms;
  metrics_registry metrics;
  escalation_sweeper sweeper(io_.executor(), *redis_, keys_, o, metrics);
  sweeper.start();
  // Wait for the notification: a blocking move of the list onto itself returns when it comes.
  std::promise<reply> moved;
  redis_->post_blocking({"BLMOVE", keys_.outbound("email"), keys_.outbound("email"), "RIGHT",
                         "LEFT", "10"},
                        15s, io_.executor(), [&moved](error_code ec, reply r) {
                          moved.set_value(ec ? reply::make_error(ec.message()) : std::move(r));
                        });
  ASSERT_TRUE(moved.get_future().get().is_string());
  // The pass's reply (and its count) follows the script's writes.
  for (int i = 0; i < 400 && metrics.render().find("bellhop_escalations_total 1") ==
                                 std::string::npos;
       ++i)
    std::this_thread::sleep_for(5ms);
  sweeper.stop();
  EXPECT_EQ(length(keys_.outbound("email")), 1);
  EXPECT_EQ(run({"EXISTS", keys_.property_escalation_cursor("hotel-b")}).integer(), 0);
  EXPECT_NE(metrics.render().find("bellhop_escalations_total 1"), std::string::npos);
}

}  // namespace
}  // namespace bellhop::gateway
