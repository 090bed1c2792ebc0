// WhatsApp's customer-service window and template messages end to end: real bellhop and
// redis-server processes, the Graph API played by a fake provider, a 2-second window.
// A conversation is made "old" by writing its last_inbound_at in Redis, as ingest would have
// written it for a guest who wrote that long ago.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "window-test-key-0123456789";
const std::string guest = "+4915112345678";

fake_response graph_ok(std::size_t index) {
  return {200, R"({"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],)"
               R"("messages":[{"id":"wamid.)" +
                   std::to_string(index) + R"("}]})"};
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  return d;
}

const std::string check_in_template =
    R"({"name":"check_in_reminder","language":"en_US","components":[)"
    R"({"type":"body","parameters":[{"type":"text","text":"Ana"},{"type":"text","text":"15:00"}]}]})";

class ServiceWindowProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                 local_url(port_))
                          << R"(
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(",
                                  "properties": ["*"]}]},
      "channels": {"whatsapp": {"app_secret": "app-secret", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "service_window_s": 2, "api_base_url": ")"
                          << graph_.url() << R"(/v21.0"}}
    })";
    bellhop_.emplace(std::vector<std::string>{BELLHOP_BINARY, "serve", "--config", config.string()},
                     dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_->output();
  }

  http_result post(const std::string& target, const std::string& body) {
    return http_request(
        port_, "POST", target, body,
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
  }

  // The guest writes: returns the conversation id (ingest records last_inbound_at).
  std::string guest_writes(const std::string& text) {
    const auto r = post(
        "/v1/messages/inbound",
        R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":"ext-)" +
            std::to_string(++inbound_) + R"(","from":")" + guest + R"(","text":")" + text + "\"}");
    EXPECT_EQ(r.status, 202) << r.body;
    auto d = parse(r.body);
    return d.IsObject() && d.HasMember("conversation_id") ? d["conversation_id"].GetString() : "";
  }

  // Queues a reply through POST /v1/messages/outbound; returns its id.
  std::string reply(const std::string& fields) {
    const auto r = post("/v1/messages/outbound",
                        R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
                            "\"," + fields + "}");
    EXPECT_EQ(r.status, 202) << r.body;
    auto d = parse(r.body);
    return d.IsObject() && d.HasMember("id") ? d["id"].GetString() : "";
  }

  std::string status_of(const std::string& id) {
    return redis_.cli("HGET message:" + id + " status");
  }

  // The message.status events of message `id` in the property's history (one per line).
  std::vector<std::string> status_events(const std::string& id) {
    std::vector<std::string> out;
    std::istringstream history(redis_.cli("XRANGE property:hotel-berlin:events - +"));
    for (std::string line; std::getline(history, line);) {
      if (line.find(R"("event":"message.status")") != std::string::npos &&
          line.find(R"("id":")" + id + "\"") != std::string::npos)
        out.push_back(line);
    }
    return out;
  }

  temp_dir dir_;
  redis_server redis_;
  fake_provider graph_{[](const fake_request&, std::size_t i) { return graph_ok(i); }};
  std::uint16_t port_ = 0;
  std::optional<child_process> bellhop_;
  int inbound_ = 0;
};

TEST_F(ServiceWindowProcess, InsideTheWindowTextIsSentOutsideItIsDeadWithoutAProviderCall) {
  const auto cid = guest_writes("Is breakfast included?");
  ASSERT_FALSE(cid.empty());
  const auto written = redis_.cli("HGET conversation:" + cid + " last_inbound_at");
  ASSERT_FALSE(written.empty()) << "ingest records when the guest last wrote";
  EXPECT_LE(std::abs(std::stoll(written) - now_ms()), 5000);

  // Inside the window: sent as text.
  const auto sent = reply(R"("text":"Yes, 7 to 10.","conversation_id":")" + cid + "\"");
  ASSERT_TRUE(eventually([&] { return status_of(sent) == "sent"; }, 10s)) << bellhop_->output();
  ASSERT_EQ(graph_.count(), 1u);
  EXPECT_EQ(parse(graph_.requests()[0].body)["type"].GetString(), std::string("text"));

  // The guest wrote 10 s ago, the window is 2 s: dead, and the provider never sees it.
  redis_.cli("HSET conversation:" + cid + " last_inbound_at " + std::to_string(now_ms() - 10'000));
  const auto late = reply(R"("text":"Anything else?","conversation_id":")" + cid + "\"");
  ASSERT_TRUE(eventually([&] { return status_of(late) == "failed"; }, 10s)) << bellhop_->output();
  EXPECT_EQ(redis_.cli("HGET message:" + late + " reason"), "outside_service_window");
  EXPECT_EQ(redis_.cli("HGET message:" + late + " error_code"), "outside_service_window");
  auto dead = parse(redis_.cli("LINDEX outbound:whatsapp:dead 0"));
  ASSERT_TRUE(dead.IsObject());
  EXPECT_STREQ(dead["reason"].GetString(), "outside_service_window");
  EXPECT_EQ(std::string(dead["message"]["id"].GetString()), late);
  const auto events = status_events(late);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find(R"("status":"failed")"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find(R"("reason":"outside_service_window")"), std::string::npos) << events[0];

  // No known conversation (no conversation_id, so no record to read): outside the window.
  const auto unknown = reply(R"("text":"Welcome!")");
  ASSERT_TRUE(eventually([&] { return status_of(unknown) == "failed"; }, 10s));
  EXPECT_EQ(redis_.cli("HGET message:" + unknown + " reason"), "outside_service_window");
  EXPECT_EQ(graph_.count(), 1u) << "a message outside the window reaches no provider";
}

TEST_F(ServiceWindowProcess, TheWindowIsDecidedWhenTheMessageIsSentNotWhenItIsQueued) {
  const auto cid = guest_writes("Can you call me a taxi?");
  ASSERT_FALSE(cid.empty());
  // Queued inside the window, due after it has closed.
  const auto delayed =
      reply(R"("text":"Your taxi is here.","delay_ms":3000,"conversation_id":")" + cid + "\"");
  ASSERT_TRUE(eventually([&] { return status_of(delayed) == "failed"; }, 10s))
      << bellhop_->output();
  EXPECT_EQ(redis_.cli("HGET message:" + delayed + " reason"), "outside_service_window");
  EXPECT_EQ(graph_.count(), 0u);
}

TEST_F(ServiceWindowProcess, OutsideTheWindowTheTemplateGoesInsteadAndTemplatesGoDirectly) {
  const auto cid = guest_writes("Thanks!");
  ASSERT_FALSE(cid.empty());
  redis_.cli("HSET conversation:" + cid + " last_inbound_at " + std::to_string(now_ms() - 10'000));
  const auto fallback = reply(R"("text":"See you at check-in!","conversation_id":")" + cid +
                              R"(","template":)" + check_in_template);
  ASSERT_TRUE(eventually([&] { return status_of(fallback) == "sent"; }, 10s)) << bellhop_->output();
  ASSERT_EQ(graph_.count(), 1u);
  const auto expected_body =
      R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678",)"
      R"("type":"template","template":{"name":"check_in_reminder","language":{"code":"en_US"},)"
      R"("components":[{"type":"body","parameters":[{"type":"text","text":"Ana"},)"
      R"({"type":"text","text":"15:00"}]}]}})";
  EXPECT_EQ(graph_.requests()[0].body, expected_body);
  EXPECT_EQ(graph_.requests()[0].target, "/v21.0/1234/messages");
  EXPECT_EQ(redis_.cli("HGET message:" + fallback + " sent_as"), "template");
  auto events = status_events(fallback);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_NE(events[0].find(R"("status":"sent")"), std::string::npos) << events[0];
  EXPECT_NE(events[0].find(R"("sent_as":"template")"), std::string::npos) << events[0];

  // A template-only message to a guest Bellhop has never heard from goes as it is.
  const auto direct =
      post("/v1/messages/outbound", R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
                                    R"("to":"+4915199999999","template":{"name":"hello_world",)"
                                    R"("language":"en"}})");
  ASSERT_EQ(direct.status, 202) << direct.body;
  const std::string direct_id = parse(direct.body)["id"].GetString();
  ASSERT_TRUE(eventually([&] { return status_of(direct_id) == "sent"; }, 10s));
  ASSERT_EQ(graph_.count(), 2u);
  EXPECT_EQ(graph_.requests()[1].body,
            R"({"messaging_product":"whatsapp","recipient_type":"individual",)"
            R"("to":"4915199999999","type":"template","template":{"name":"hello_world",)"
            R"("language":{"code":"en"}}})");
  EXPECT_EQ(redis_.cli("HGET message:" + direct_id + " sent_as"), "template");

  // Inside the window, text with a template goes as the text.
  const auto fresh = guest_writes("One more question");
  const auto in_window = reply(R"("text":"Ask away.","conversation_id":")" + fresh +
                               R"(","template":)" + check_in_template);
  ASSERT_TRUE(eventually([&] { return status_of(in_window) == "sent"; }, 10s));
  ASSERT_EQ(graph_.count(), 3u);
  EXPECT_EQ(parse(graph_.requests()[2].body)["text"]["body"].GetString(), std::string("Ask away."));
  EXPECT_EQ(redis_.cli("HGET message:" + in_window + " sent_as"), "");
}

TEST_F(ServiceWindowProcess, BadTemplatesAreRefusedWith422NamingTheField) {
  struct bad {
    std::string body, field;
  };
  const bad cases[] = {
      {R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915112345678",)"
       R"("template":{"name":"Check In!","language":"en"}})",
       "template.name"},
      {R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915112345678",)"
       R"("template":{"name":"check_in","language":"en","components":[{"type":"body",)"
       R"("parameters":[{"type":"text","text":""}]}]}})",
       "template.components[0].parameters[0].text"},
      {R"({"property_id":"hotel-berlin","channel":"sms","to":"+4915112345678","text":"Hi",)"
       R"("template":{"name":"check_in","language":"en"}})",
       "template"},
  };
  for (const auto& c : cases) {
    const auto r = post("/v1/messages/outbound", c.body);
    EXPECT_EQ(r.status, 422) << c.body << " -> " << r.body;
    auto d = parse(r.body);
    ASSERT_TRUE(d.IsObject() && d.HasMember("error")) << r.body;
    EXPECT_STREQ(d["error"]["code"].GetString(), "invalid_message") << r.body;
    ASSERT_TRUE(d["error"].HasMember("field")) << r.body;
    EXPECT_EQ(std::string(d["error"]["field"].GetString()), c.field) << r.body;
  }
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "0");
  EXPECT_EQ(graph_.count(), 0u);
}

}  // namespace
}  // namespace bellhop::test
