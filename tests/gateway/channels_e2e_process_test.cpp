// Each channel from the guest's webhook to the staff dashboard and back out: a real bellhop and
// redis-server, the demo AI engine (examples/demo-engine) answering the FAQ, a dashboard on
// /v1/realtime, and the providers played by local fakes: the Graph API and Twilio's Messages
// API (fake_provider), and a mail server (tests/support/smtp_sink.py: aiosmtpd, STARTTLS and
// AUTH required). Webhooks are signed by Python's hmac, not by Bellhop's code.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bellhop/contract/staff_token.hpp"
#include "support/fake_provider.hpp"
#include "support/faq.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/signatures.hpp"
#include "support/smtp_sink.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path examples_dir = BELLHOP_EXAMPLES_DIR;
const fs::path faq = examples_dir / "demo-engine" / "faq.json";
const std::string jwt_secret = "channels-e2e-jwt-secret-0123456789abcdef";
const std::string app_secret = "whatsapp-app-secret";
const std::string twilio_token = "twilio-auth-token-0123";
const std::string email_secret = "email-webhook-secret-0123";
const std::string public_url = "https://gw.example-hotel.com";

class ChannelsEndToEnd : public ::testing::Test {
 protected:
  // The mail server; its port once it listens.
  std::uint16_t start_smtp_sink(const std::vector<std::string>& extra = {}) {
    return sink_.start(extra);
  }

  void start_bellhop(const std::string& graph, const std::string& twilio,
                     std::uint16_t smtp_port) {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "public_url": ")" << public_url
                          << R"(",
      "redis": {"url": ")" << redis_.url()
                          << R"(", "command_timeout_ms": 1000},
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400},
      "auth": {"adapter_keys": [{"name": "all", "key": "e2e-test-key-0123456789",
                                  "properties": ["*"]}], "jwt_secret": ")"
                          << jwt_secret << R"("},
      "channels": {
        "whatsapp": {"app_secret": ")"
                          << app_secret << R"(", "verify_token": "verify",
          "access_token": "graph-token", "phone_number_id": "1234",
          "property_id": "hotel-berlin", "api_base_url": ")"
                          << graph << R"(/v21.0"},
        "twilio": {"account_sid": "AC0123", "auth_token": ")"
                          << twilio_token << R"(",
          "from": "+15550001111", "property_id": "hotel-berlin",
          "api_base_url": ")"
                          << twilio << R"("},
        "email": {"webhook_secret": ")"
                          << email_secret << R"(",
          "from_address": "frontdesk@hotel-berlin.example", "from_name": "Hotel Berlin",
          "smtp_url": "smtp://127.0.0.1:)"
                          << smtp_port << R"(",
          "smtp_username": "hotel-smtp", "smtp_password": "smtp-password-0123",
          "smtp_ca_file": ")"
                          << sink_.cert().string() << R"(", "property_id": "hotel-berlin"}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
    engine_ = child_process({BELLHOP_DEMO_ENGINE_BINARY, "--redis", redis_.url(), "--consumer",
                             "demo-e2e", "--faq", faq.string()},
                            dir_.path() / "engine.log");
    // A staff dashboard, subscribed from the start of the property's history.
    const auto token = contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                                  std::chrono::system_clock::now(), 1h);
    ASSERT_EQ(dashboard_.connect(port_, "/v1/realtime?token=" + token), 101);
    ASSERT_TRUE(dashboard_.receive().has_value());  // welcome
    dashboard_.send(R"({"type":"subscribe","property_id":"hotel-berlin","since":0})");
  }

  // Reads dashboard frames until an event `name` whose data.status is `status` (any status
  // when empty); returns its data, or an empty object after 10 s.
  rapidjson::Document dashboard_event(const std::string& name, const std::string& status = "") {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = dashboard_.receive(1s);
      if (!f) continue;
      seen_ += *f + "\n";
      auto d = parse_json(*f);
      if (string_member(d, "event") != name || !d.HasMember("data")) continue;
      if (!status.empty() && string_member(d["data"], "status") != status) continue;
      rapidjson::Document data;
      data.CopyFrom(d["data"], data.GetAllocator());
      return data;
    }
    ADD_FAILURE() << "no " << name << " " << status << " event; frames seen:\n" << seen_;
    return parse_json("{}");
  }

  temp_dir dir_;
  redis_server redis_;
  smtp_sink sink_{dir_.path()};
  child_process bellhop_, engine_;
  ws_client dashboard_;
  std::uint16_t port_ = 0;
  std::string seen_;
};

fake_response graph_ok(std::size_t i) {
  return {200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT)" +
                   std::to_string(i) + R"("}]})"};
}

TEST_F(ChannelsEndToEnd, WhatsAppGuestToDemoEngineToGraphApiToDeliveredOnTheDashboard) {
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  fake_provider twilio([](const fake_request&, std::size_t) { return fake_response{500}; });
  start_bellhop(graph.url(), twilio.url(), 1);

  const std::string inbound = R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"1234"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":"wamid.IN1","timestamp":"1795860000","type":"text","text":{"body":"What time is breakfast?"}}]}}]}]})";
  auto posted =
      http_request(port_, "POST", "/v1/webhooks/whatsapp", inbound,
                   {{"Content-Type", "application/json"},
                    {"X-Hub-Signature-256", hmac_sha256(app_secret, inbound, dir_.path())}});
  ASSERT_EQ(posted.status, 200) << posted.body << bellhop_.output();
  auto created = dashboard_event("message.created");
  EXPECT_EQ(string_member(created, "text"), "What time is breakfast?");

  // The demo engine answers; the Graph API gets the answer for the guest.
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 15s))
      << bellhop_.output() << engine_.output();
  const auto sent = graph.requests()[0];
  EXPECT_EQ(sent.target, "/v21.0/1234/messages");
  auto body = parse_json(sent.body);
  EXPECT_EQ(string_member(body, "to"), "4915112345678");  // the Graph API takes digits
  ASSERT_TRUE(body.HasMember("text"));
  EXPECT_EQ(string_member(body["text"], "body"), faq_answer(faq, "breakfast"));
  auto sent_event = dashboard_event("message.status", "sent");
  EXPECT_EQ(string_member(sent_event, "provider_message_id"), "wamid.OUT0");

  // Meta's status callback: the dashboard sees the reply delivered.
  const std::string status = R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"1234"},"statuses":[{"id":"wamid.OUT0","status":"delivered","timestamp":"1795860060","recipient_id":"4915112345678"}]}}]}]})";
  auto st = http_request(port_, "POST", "/v1/webhooks/whatsapp", status,
                         {{"Content-Type", "application/json"},
                          {"X-Hub-Signature-256", hmac_sha256(app_secret, status, dir_.path())}});
  ASSERT_EQ(st.status, 200) << st.body;
  auto delivered = dashboard_event("message.status", "delivered");
  EXPECT_EQ(string_member(delivered, "id"), string_member(sent_event, "id"));
  EXPECT_EQ(string_member(delivered, "provider_message_id"), "wamid.OUT0");
}

TEST_F(ChannelsEndToEnd, SmsGuestToDemoEngineToMessagesApiToDeliveredOnTheDashboard) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  fake_provider twilio([](const fake_request&, std::size_t i) {
    return fake_response{201, R"({"sid":"SMOUT)" + std::to_string(i) + R"(","status":"queued"})"};
  });
  start_bellhop(graph.url(), twilio.url(), 1);

  auto post_form = [&](const std::string& path, const std::string& form) {
    return http_request(port_, "POST", path, form,
                        {{"Content-Type", "application/x-www-form-urlencoded"},
                         {"X-Twilio-Signature",
                          twilio_signature(twilio_token, public_url + path, form, dir_.path())}});
  };
  auto posted = post_form("/v1/webhooks/twilio/sms",
                          "AccountSid=AC0123&Body=Is+there+wifi%3F&From=%2B4915112345678&"
                          "MessageSid=SMIN1&NumMedia=0&To=%2B15550001111");
  ASSERT_EQ(posted.status, 200) << posted.body << bellhop_.output();
  EXPECT_EQ(string_member(dashboard_event("message.created"), "text"), "Is there wifi?");

  ASSERT_TRUE(eventually([&] { return twilio.count() == 1; }, 15s))
      << bellhop_.output() << engine_.output();
  const auto sent = twilio.requests()[0];
  EXPECT_EQ(sent.target, "/2010-04-01/Accounts/AC0123/Messages.json");
  EXPECT_NE(sent.body.find("To=%2B4915112345678"), std::string::npos) << sent.body;
  auto sent_event = dashboard_event("message.status", "sent");
  EXPECT_EQ(string_member(sent_event, "provider_message_id"), "SMOUT0");

  auto st = post_form("/v1/webhooks/twilio/status",
                      "AccountSid=AC0123&MessageSid=SMOUT0&MessageStatus=delivered&"
                      "To=%2B4915112345678");
  ASSERT_EQ(st.status, 200) << st.body;
  auto delivered = dashboard_event("message.status", "delivered");
  EXPECT_EQ(string_member(delivered, "id"), string_member(sent_event, "id"));
}

TEST_F(ChannelsEndToEnd, EmailGuestToDemoEngineToSmtpInTheGuestsThreadAndSentOnTheDashboard) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  const auto smtp_port = start_smtp_sink();
  start_bellhop(graph.url(), graph.url(), smtp_port);

  const std::string mail = R"({"message_id":"<CAF-guest-1@mail.example.com>",
    "from":"Ana Lima <Ana@Example.com>","to":"frontdesk@hotel-berlin.example",
    "subject":"Checkout tomorrow","text":"Hello! When is checkout?",
    "references":"<older@mail.example.com>"})";
  auto unsigned_post = http_request(port_, "POST", "/v1/webhooks/email", mail,
                                    {{"Content-Type", "application/json"}});
  EXPECT_EQ(unsigned_post.status, 401) << unsigned_post.body;
  auto tampered =
      http_request(port_, "POST", "/v1/webhooks/email", mail + " ",
                   {{"Content-Type", "application/json"},
                    {"X-Bellhop-Signature", hmac_sha256(email_secret, mail, dir_.path())}});
  EXPECT_EQ(tampered.status, 401) << tampered.body;
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
  auto posted =
      http_request(port_, "POST", "/v1/webhooks/email", mail,
                   {{"Content-Type", "application/json"},
                    {"X-Bellhop-Signature", hmac_sha256(email_secret, mail, dir_.path())}});
  ASSERT_EQ(posted.status, 200) << posted.body << bellhop_.output();
  auto created = dashboard_event("message.created");
  EXPECT_EQ(string_member(created, "from"), "ana@example.com");
  EXPECT_EQ(string_member(created, "channel"), "email");

  // The demo engine's answer leaves by SMTP (STARTTLS, AUTH), in the guest's thread.
  const auto first = dir_.path() / "mail" / "1.json";
  ASSERT_TRUE(eventually([&] { return fs::exists(first); }, 15s))
      << bellhop_.output() << engine_.output() << sink_.output();
  std::ifstream in(first);
  std::stringstream content;
  content << in.rdbuf();
  auto got = parse_json(content.str());
  EXPECT_EQ(string_member(got, "mail_from"), "frontdesk@hotel-berlin.example");
  ASSERT_TRUE(got["rcpt_tos"].IsArray() && got["rcpt_tos"].Size() == 1);
  EXPECT_STREQ(got["rcpt_tos"][0].GetString(), "ana@example.com");
  EXPECT_TRUE(got["tls"].GetBool());
  EXPECT_EQ(string_member(got, "auth_user"), "hotel-smtp");
  const auto data = string_member(got, "data");
  EXPECT_NE(data.find("\r\nIn-Reply-To: <CAF-guest-1@mail.example.com>\r\n"), std::string::npos)
      << data;
  EXPECT_NE(data.find("\r\nReferences: <older@mail.example.com> <CAF-guest-1@mail.example.com>"),
            std::string::npos)
      << data;
  EXPECT_NE(data.find("\r\nSubject: Re: Checkout tomorrow\r\n"), std::string::npos) << data;
  EXPECT_NE(data.find("To: ana@example.com"), std::string::npos) << data;
  auto sent_event = dashboard_event("message.status", "sent");
  EXPECT_NE(data.find("Message-ID: " + string_member(sent_event, "provider_message_id")),
            std::string::npos)
      << data;
}

// A reply of another property that names the guest's conversation is never sent from this
// property's address (docs/outbound.md: a channel sends for its own property only), so it
// learns nothing of the guest's thread either; the property's own mail still goes.
TEST_F(ChannelsEndToEnd, AnEmailOfAnotherPropertyIsDeadLetteredAndNeverSent) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  const auto smtp_port = start_smtp_sink();
  start_bellhop(graph.url(), graph.url(), smtp_port);
  const std::string mail = R"({"message_id":"<CAF-private-1@mail.example.com>",
    "from":"ana@example.com","to":"frontdesk@hotel-berlin.example",
    "subject":"My private subject","text":"Hello!"})";
  auto posted =
      http_request(port_, "POST", "/v1/webhooks/email", mail,
                   {{"Content-Type", "application/json"},
                    {"X-Bellhop-Signature", hmac_sha256(email_secret, mail, dir_.path())}});
  ASSERT_EQ(posted.status, 200) << posted.body << bellhop_.output();
  const auto conversation = string_member(dashboard_event("message.created"), "conversation_id");
  redis_.cli(R"(LPUSH outbound:email '{"property_id":"hotel-paris","channel":"email",)"
             R"("to":"eve@example.net","text":"hi","conversation_id":")" +
             conversation + "\"}'");
  // hotel-berlin's own mail, pushed behind it: once it is sent, the other one was taken.
  redis_.cli(R"(LPUSH outbound:email '{"property_id":"hotel-berlin","channel":"email",)"
             R"("to":"bob@example.org","text":"Your booking is confirmed."}')");
  // (The demo engine hands a greeting to the staff: no other mail.)
  const auto path = dir_.path() / "mail" / "1.json";
  ASSERT_TRUE(eventually([&] { return fs::exists(path); }, 15s))
      << bellhop_.output() << sink_.output();
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  const auto data = string_member(parse_json(content.str()), "data");
  EXPECT_NE(data.find("To: bob@example.org"), std::string::npos) << data;
  EXPECT_EQ(data.find("My private subject"), std::string::npos) << data;
  ASSERT_EQ(redis_.cli("LLEN outbound:email:dead"), "1");
  auto letter = parse_json(redis_.cli("LINDEX outbound:email:dead 0"));
  EXPECT_EQ(string_member(letter, "reason"),
            "invalid: property_id hotel-paris is not the property of channel email");
  EXPECT_EQ(redis_.cli("HGET outbound:email:stats sent"), "1");
  EXPECT_FALSE(fs::exists(dir_.path() / "mail" / "2.json"));
}

TEST_F(ChannelsEndToEnd, BadEmailWebhooksGetTheirStatusAndQueueNothing) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  start_bellhop(graph.url(), graph.url(), 1);
  auto signed_post = [&](const std::string& body, const std::string& type = "application/json") {
    return http_request(port_, "POST", "/v1/webhooks/email", body,
                        {{"Content-Type", type},
                         {"X-Bellhop-Signature", hmac_sha256(email_secret, body, dir_.path())}});
  };
  struct row {
    std::string body, type;
    int status;
    std::string code;
  };
  const std::vector<row> rows = {
      {"{\"message_id\": ", "application/json", 400, "malformed_json"},
      {R"({"message_id":"<m@x>","to":"frontdesk@hotel-berlin.example","text":"hi"})",
       "application/json", 422, "missing_field"},
      {R"({"message_id":"<m@x>","from":"a@b.example","to":"h@h.example","text":"hi"})",
       "text/plain", 415, "unsupported_media_type"},
      {R"({"message_id":"<m@x>","from":"a@b.example","to":"h@h.example","text":")" +
           std::string(2 << 20, 'x') + "\"}",
       "application/json", 413, ""},
  };
  for (const auto& r : rows) {
    auto res = signed_post(r.body, r.type);
    EXPECT_EQ(res.status, r.status) << r.body.substr(0, 80) << " -> " << res.body;
    if (!r.code.empty()) {
      EXPECT_EQ(string_member(parse_json(res.body)["error"], "code"), r.code) << res.body;
    }
  }
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
  EXPECT_EQ(http_get(port_, "/readyz").status, 200) << "still serving";
}

TEST_F(ChannelsEndToEnd, AnEmailLongerThanTheTextLimitIsCutNotLost) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  start_bellhop(graph.url(), graph.url(), 1);
  engine_ = {};  // nobody takes it off the queue
  // 16,383 ASCII bytes, then "ü" (2 bytes) across the 16,384 limit, then more.
  const std::string text = std::string(16383, 'x') + "\u00fc" + std::string(5000, 'y');
  const std::string mail = R"({"message_id":"<long@mail.example>","from":"ana@example.com",)"
                           R"("to":"frontdesk@hotel-berlin.example","text":")" + text + "\"}";
  auto posted =
      http_request(port_, "POST", "/v1/webhooks/email", mail,
                   {{"Content-Type", "application/json"},
                    {"X-Bellhop-Signature", hmac_sha256(email_secret, mail, dir_.path())}});
  ASSERT_EQ(posted.status, 200) << posted.body;
  auto queued = parse_json(redis_.cli("LINDEX inbound:messages 0"));
  ASSERT_TRUE(queued.IsObject()) << bellhop_.output();
  EXPECT_EQ(string_member(queued, "text"), std::string(16383, 'x'));  // not half a character
  ASSERT_TRUE(queued["metadata"].HasMember("text_truncated"));
  EXPECT_TRUE(queued["metadata"]["text_truncated"].GetBool());
}

TEST_F(ChannelsEndToEnd, AnEmailWithALongMessageIdAndNameIsStoredOnceNotDropped) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  start_bellhop(graph.url(), graph.url(), 1);
  engine_ = {};  // nobody takes it off the queue
  // A Message-ID of 600 bytes (RFC 5322 allows 998; the canonical external_id 256) and a
  // display name of 199 ASCII bytes then "é" across the canonical 200.
  const std::string id = "<" + std::string(580, 'a') + "@mail.example>";
  const std::string name = std::string(199, 'n') + "\u00e9" + std::string(50, 'z');
  const std::string mail = R"({"message_id":")" + id + R"(","from":"ana@example.com",)"
                           R"("from_name":")" + name + R"(",)"
                           R"("to":"frontdesk@hotel-berlin.example","text":"hello"})";
  for (int i = 0; i < 2; ++i) {  // the relay retries: still one message
    auto posted =
        http_request(port_, "POST", "/v1/webhooks/email", mail,
                     {{"Content-Type", "application/json"},
                      {"X-Bellhop-Signature", hmac_sha256(email_secret, mail, dir_.path())}});
    ASSERT_EQ(posted.status, 200) << posted.body;
  }
  ASSERT_EQ(redis_.cli("LLEN inbound:messages"), "1") << bellhop_.output();
  auto queued = parse_json(redis_.cli("LINDEX inbound:messages 0"));
  ASSERT_TRUE(queued.IsObject());
  const auto external = string_member(queued, "external_id");
  EXPECT_EQ(external.rfind("sha256:", 0), 0u) << external;
  EXPECT_EQ(external.size(), 7u + 64u) << external;
  EXPECT_EQ(string_member(queued, "guest_name"), std::string(199, 'n'));
  EXPECT_EQ(string_member(queued["metadata"], "message_id"), id);
}

TEST_F(ChannelsEndToEnd, EmailThatTheServerRefusesIsDeadWithTheReasonAndAFailedEvent) {
  fake_provider graph([](const fake_request&, std::size_t) { return fake_response{500}; });
  const auto smtp_port = start_smtp_sink({"--reject-rcpt-code", "550"});
  start_bellhop(graph.url(), graph.url(), smtp_port);
  redis_.cli(R"(LPUSH outbound:email '{"property_id":"hotel-berlin","channel":"email","to":"nobody@example.com","text":"Your booking is confirmed."}')");
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:email:dead") == "1"; }, 15s))
      << bellhop_.output();
  const auto dead = redis_.cli("LINDEX outbound:email:dead 0");
  EXPECT_NE(dead.find("550"), std::string::npos) << dead;
  auto failed = dashboard_event("message.status", "failed");
  EXPECT_EQ(string_member(failed, "error_code"), "550");
  EXPECT_FALSE(fs::exists(dir_.path() / "mail" / "1.json"));
}

}  // namespace
}  // namespace bellhop::test
