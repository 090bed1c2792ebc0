// Many accounts per channel (docs/properties.md, "Accounts and routing"): one gateway, two
// properties, two WhatsApp numbers (of two Meta apps), two Twilio numbers (of two Twilio
// accounts), two mailboxes (one with its own webhook secret), two web chat sites. A real
// bellhop and redis-server; the Graph API and Twilio played by fake_provider, the mail server by
// tests/support/smtp_sink.py. Webhooks are signed by Python's hmac, not by Bellhop's code.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
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

const std::string jwt_secret = "accounts-e2e-jwt-secret-0123456789abcdef";
const std::string adapter_key = "accounts-test-key-0123456789";
const std::string public_url = "https://gw.example-hotels.com";
// Two Meta apps: hotel-berlin's number is the section's app, hotel-paris's its own.
const std::string berlin_app_secret = "whatsapp-app-secret-berlin";
const std::string paris_app_secret = "whatsapp-app-secret-paris";
const std::string berlin_twilio_token = "twilio-token-berlin-0123";
const std::string paris_twilio_token = "twilio-token-paris-4567";
const std::string email_secret = "email-webhook-secret-section";
const std::string paris_email_secret = "email-webhook-secret-paris";

// A guest's text to `number` (a guest of that number is one conversation per property: the
// conversation's account is the number the guest wrote to last).
std::string whatsapp_text(const std::string& number, const std::string& id, const std::string& text,
                          const std::string& guest = "4915112345678") {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930000000","phone_number_id":")" +
         number + R"("},"contacts":[{"profile":{"name":"Ana"},"wa_id":")" + guest +
         R"("}],"messages":[{"from":")" + guest + R"(","id":")" + id +
         R"(","timestamp":"1795860000","type":"text","text":{"body":")" + text + R"("}}]}}]}]})";
}

std::string mail_to(const std::string& to, const std::string& id, const std::string& text) {
  return R"({"message_id":"<)" + id + R"(@mail.example.com>","from":"ana@example.com","to":")" +
         to + R"(","subject":"A question","text":")" + text + "\"}";
}

class Accounts : public ::testing::Test {
 protected:
  void SetUp() override {
    smtp_port_ = sink_.start();
    ASSERT_NE(smtp_port_, 0) << sink_.output();

    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                 public_url)
                          << R"(
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400},
      "ratelimit": )" << ratelimit_
                          << R"(,
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(",
                                  "properties": ["*"]}], "jwt_secret": ")"
                          << jwt_secret << R"("},
      "channels": {
        "whatsapp": {"app_secret": ")"
                          << berlin_app_secret << R"(", "verify_token": "verify",
          "api_base_url": ")"
                          << graph_.url() << R"(/v21.0",
          "accounts": [
            {"property_id": "hotel-berlin", "phone_number_id": "1111",
             "access_token": "graph-token-berlin"},
            {"property_id": "hotel-paris", "phone_number_id": "2222",
             "access_token": "graph-token-paris", "app_secret": ")"
                          << paris_app_secret << R"(",
             "verify_token": "verify-paris"},
            {"property_id": "hotel-berlin", "phone_number_id": "3333",
             "access_token": "graph-token-berlin-2"}]},
        "twilio": {"api_base_url": ")"
                          << twilio_.url() << R"(",
          "accounts": [
            {"property_id": "hotel-berlin", "account_sid": "ACBERLIN",
             "auth_token": ")"
                          << berlin_twilio_token << R"(", "from": "+15550001111"},
            {"property_id": "hotel-paris", "account_sid": "ACPARIS",
             "auth_token": ")"
                          << paris_twilio_token << R"(", "from": "+33700000002"}]},
        "email": {"webhook_secret": ")"
                          << email_secret << R"(",
          "smtp_url": "smtp://127.0.0.1:)"
                          << smtp_port_ << R"(",
          "smtp_username": "hotel-smtp", "smtp_password": "smtp-password-0123",
          "smtp_ca_file": ")"
                          << sink_.cert().string() << R"(",
          "accounts": [
            {"property_id": "hotel-berlin", "address": "frontdesk@berlin.example"},
            {"property_id": "hotel-paris", "address": "Accueil@Paris.example",
             "from_name": "Hotel Paris", "webhook_secret": ")"
                          << paris_email_secret << R"("}]},
        "webchat": {"sites": [
          {"id": "berlin-site", "property_id": "hotel-berlin"},
          {"id": "paris-site", "property_id": "hotel-paris"}]}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
    // One dashboard per property, each from the start of its property's history.
    const std::pair<ws_client*, std::string> dashboards[] = {{&berlin_, "hotel-berlin"},
                                                             {&paris_, "hotel-paris"}};
    for (const auto& [dashboard, property] : dashboards) {
      const auto token = contract::mint_staff_token(jwt_secret, "frontdesk", {property},
                                                    std::chrono::system_clock::now(), 1h);
      ASSERT_EQ(dashboard->connect(port_, "/v1/realtime?token=" + token), 101);
      ASSERT_TRUE(dashboard->receive().has_value());  // welcome
      dashboard->send(R"({"type":"subscribe","property_id":")" + property + R"(","since":0})");
    }
  }

  http_result post_json(const std::string& path, const std::string& body,
                        const std::string& signature_header, const std::string& signature) {
    return http_request(port_, "POST", path, body,
                        {{"Content-Type", "application/json"}, {signature_header, signature}});
  }

  http_result post_twilio(const std::string& token, const std::string& form) {
    const std::string path = "/v1/webhooks/twilio/sms";
    return http_request(
        port_, "POST", path, form,
        {{"Content-Type", "application/x-www-form-urlencoded"},
         {"X-Twilio-Signature", twilio_signature(token, public_url + path, form, dir_.path())}});
  }

  http_result post_outbound(const std::string& body) {
    return http_request(
        port_, "POST", "/v1/messages/outbound", body,
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + adapter_key}});
  }

  // The envelope on inbound:messages whose external_id is `id` (nothing takes them off).
  rapidjson::Document envelope(const std::string& external_id) {
    rapidjson::Document found;
    eventually(
        [&] {
          std::istringstream lines(redis_.cli("LRANGE inbound:messages 0 -1"));
          for (std::string line; std::getline(lines, line);) {
            auto d = parse_json(line);
            if (d.IsObject() && string_member(d, "external_id") == external_id) {
              found.Swap(d);
              return true;
            }
          }
          return false;
        },
        10s);
    return found;
  }

  // Every frame a dashboard has received so far (waits up to `quiet` for each next one).
  std::string frames(ws_client& c, std::chrono::milliseconds quiet = 500ms) {
    std::string all;
    while (auto f = c.receive(quiet)) all += *f + "\n";
    return all;
  }

  std::string ratelimit_ = "{}";  // the ratelimit section
  temp_dir dir_;
  redis_server redis_;
  fake_provider graph_{[](const fake_request&, std::size_t i) {
    return fake_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT)" +
                                  std::to_string(i) + R"("}]})"};
  }};
  fake_provider twilio_{[](const fake_request&, std::size_t i) {
    return fake_response{201, R"({"sid":"SMOUT)" + std::to_string(i) + R"(","status":"queued"})"};
  }};
  std::uint16_t smtp_port_ = 0, port_ = 0;
  smtp_sink sink_{dir_.path()};
  child_process bellhop_;
  ws_client berlin_, paris_;
};

TEST_F(Accounts, EachWebhookLandsInItsPropertyAndEachReplyLeavesFromItsAccount) {
  // --- WhatsApp: each number signed by its own app --------------------------------------------
  const auto wa_berlin = whatsapp_text("1111", "wamid.BERLIN1", "Breakfast?");
  const auto wa_paris = whatsapp_text("2222", "wamid.PARIS1", "Petit dejeuner?");
  ASSERT_EQ(post_json("/v1/webhooks/whatsapp", wa_berlin, "X-Hub-Signature-256",
                      hmac_sha256(berlin_app_secret, wa_berlin, dir_.path()))
                .status,
            200)
      << bellhop_.output();
  ASSERT_EQ(post_json("/v1/webhooks/whatsapp", wa_paris, "X-Hub-Signature-256",
                      hmac_sha256(paris_app_secret, wa_paris, dir_.path()))
                .status,
            200);
  // Berlin's second number: replies to its guest leave from it, not from Berlin's first.
  const auto wa_berlin2 = whatsapp_text("3333", "wamid.BERLIN2", "Parking?", "4915122222222");
  ASSERT_EQ(post_json("/v1/webhooks/whatsapp", wa_berlin2, "X-Hub-Signature-256",
                      hmac_sha256(berlin_app_secret, wa_berlin2, dir_.path()))
                .status,
            200);
  // Paris's number under Berlin's app is not Paris's message: kept aside, not queued.
  const auto wa_crossed = whatsapp_text("2222", "wamid.CROSSED", "Hello");
  EXPECT_EQ(post_json("/v1/webhooks/whatsapp", wa_crossed, "X-Hub-Signature-256",
                      hmac_sha256(berlin_app_secret, wa_crossed, dir_.path()))
                .status,
            200);
  // Any account's verify token answers Meta's subscription challenge.
  for (const auto* token : {"verify", "verify-paris"}) {
    auto challenge = http_get(port_, std::string("/v1/webhooks/whatsapp?hub.mode=subscribe&") +
                                         "hub.verify_token=" + token + "&hub.challenge=42");
    EXPECT_EQ(challenge.status, 200) << token;
    EXPECT_EQ(challenge.body, "42");
  }
  EXPECT_EQ(http_get(port_,
                     "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=nope&"
                     "hub.challenge=42")
                .status,
            403);

  // --- SMS: each number of its own Twilio account, signed with that account's token ----------
  ASSERT_EQ(post_twilio(berlin_twilio_token,
                        "AccountSid=ACBERLIN&Body=Wifi%3F&From=%2B4915112345678&"
                        "MessageSid=SMBERLIN1&NumMedia=0&To=%2B15550001111")
                .status,
            200);
  ASSERT_EQ(post_twilio(paris_twilio_token,
                        "AccountSid=ACPARIS&Body=Wifi%3F&From=%2B4915112345678&"
                        "MessageSid=SMPARIS1&NumMedia=0&To=%2B33700000002")
                .status,
            200);
  EXPECT_EQ(post_twilio(berlin_twilio_token,
                        "AccountSid=ACPARIS&Body=Wifi%3F&From=%2B4915112345678&"
                        "MessageSid=SMFORGED&NumMedia=0&To=%2B33700000002")
                .status,
            401)
      << "signed with another account's token";

  // --- Email: each mailbox with its secret (Berlin's is the section's) ------------------------
  const auto mail_berlin = mail_to("frontdesk@berlin.example", "berlin-1", "Checkout?");
  const auto mail_paris = mail_to("accueil@paris.example", "paris-1", "Depart?");
  ASSERT_EQ(post_json("/v1/webhooks/email", mail_berlin, "X-Bellhop-Signature",
                      hmac_sha256(email_secret, mail_berlin, dir_.path()))
                .status,
            200);
  ASSERT_EQ(post_json("/v1/webhooks/email", mail_paris, "X-Bellhop-Signature",
                      hmac_sha256(paris_email_secret, mail_paris, dir_.path()))
                .status,
            200);
  const auto mail_forged = mail_to("accueil@paris.example", "forged-1", "Hi");
  EXPECT_EQ(post_json("/v1/webhooks/email", mail_forged, "X-Bellhop-Signature",
                      hmac_sha256(email_secret, mail_forged, dir_.path()))
                .status,
            401)
      << "a mailbox with its own secret takes nothing the section's signed";

  // --- Web chat: the site the widget names ----------------------------------------------------
  ws_client guest;
  ASSERT_EQ(guest.connect(port_, "/v1/webchat?site=paris-site"), 101);
  auto welcome = parse_json(guest.receive().value_or("{}"));
  EXPECT_EQ(string_member(welcome, "property_id"), "hotel-paris");
  const auto guest_id = string_member(welcome, "guest");
  guest.send(R"({"type":"message","client_id":"c1","text":"Bonjour"})");
  EXPECT_EQ(string_member(parse_json(guest.receive().value_or("{}")), "type"), "ack");
  ws_client stranger;
  EXPECT_EQ(stranger.connect(port_, "/v1/webchat?site=nowhere"), 404);
  ws_client unnamed;
  EXPECT_EQ(unnamed.connect(port_, "/v1/webchat"), 404) << "two sites: the widget names one";

  // --- Each envelope says its property and account --------------------------------------------
  struct expected {
    std::string external_id, property, account;
  };
  const std::vector<expected> arrivals = {
      {"wamid.BERLIN1", "hotel-berlin", "1111"},
      {"wamid.PARIS1", "hotel-paris", "2222"},
      {"wamid.BERLIN2", "hotel-berlin", "3333"},
      {"SMBERLIN1", "hotel-berlin", "+15550001111"},
      {"SMPARIS1", "hotel-paris", "+33700000002"},
      {"<berlin-1@mail.example.com>", "hotel-berlin", "frontdesk@berlin.example"},
      {"<paris-1@mail.example.com>", "hotel-paris", "accueil@paris.example"},
  };
  std::map<std::string, std::string> conversation;  // external id -> conversation id
  for (const auto& a : arrivals) {
    auto e = envelope(a.external_id);
    ASSERT_TRUE(e.IsObject()) << a.external_id << " not queued\n" << bellhop_.output();
    EXPECT_EQ(string_member(e, "property_id"), a.property) << a.external_id;
    EXPECT_EQ(string_member(e, "account"), a.account) << a.external_id;
    conversation[a.external_id] = string_member(e, "conversation_id");
    EXPECT_EQ(redis_.cli("HGET conversation:" + conversation[a.external_id] + " account"),
              a.account);
  }
  std::string webchat_conversation;
  {
    std::istringstream lines(redis_.cli("LRANGE inbound:messages 0 -1"));
    for (std::string line; std::getline(lines, line);) {
      auto d = parse_json(line);
      if (string_member(d, "channel") != "webchat") continue;
      EXPECT_EQ(string_member(d, "property_id"), "hotel-paris");
      EXPECT_EQ(string_member(d, "account"), "paris-site");
      webchat_conversation = string_member(d, "conversation_id");
    }
  }
  ASSERT_FALSE(webchat_conversation.empty());
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "8") << "the crossed and forged ones are not";

  // --- Replies, by conversation only: from the account the guest wrote to ---------------------
  auto reply = [&](const std::string& property, const std::string& channel, const std::string& to,
                   const std::string& cid, const std::string& extra = "") {
    return post_outbound(R"({"property_id":")" + property + R"(","channel":")" + channel +
                         R"(","to":")" + to + R"(","text":"Answer","conversation_id":")" + cid +
                         "\"" + extra + "}");
  };
  ASSERT_EQ(reply("hotel-paris", "whatsapp", "+4915112345678", conversation["wamid.PARIS1"]).status,
            202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 1; }, 15s)) << bellhop_.output();
  EXPECT_EQ(graph_.requests()[0].target, "/v21.0/2222/messages");
  EXPECT_EQ(graph_.requests()[0].headers["authorization"], "Bearer graph-token-paris");
  ASSERT_EQ(
      reply("hotel-berlin", "whatsapp", "+4915112345678", conversation["wamid.BERLIN1"]).status,
      202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 2; }, 15s)) << bellhop_.output();
  EXPECT_EQ(graph_.requests()[1].target, "/v21.0/1111/messages");
  EXPECT_EQ(graph_.requests()[1].headers["authorization"], "Bearer graph-token-berlin");
  ASSERT_EQ(
      reply("hotel-berlin", "whatsapp", "+4915122222222", conversation["wamid.BERLIN2"]).status,
      202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 3; }, 15s)) << bellhop_.output();
  EXPECT_EQ(graph_.requests()[2].target, "/v21.0/3333/messages");
  EXPECT_EQ(graph_.requests()[2].headers["authorization"], "Bearer graph-token-berlin-2");
  // Without a conversation (a template: the guest never wrote): the property's first number.
  ASSERT_EQ(post_outbound(R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
                          R"("to":"+4915100000009","template":{"name":"welcome","language":"en"}})")
                .status,
            202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 4; }, 15s)) << bellhop_.output();
  EXPECT_EQ(graph_.requests()[3].target, "/v21.0/1111/messages");
  // The first guest writes to the second number: their conversation's replies follow.
  const auto wa_moved = whatsapp_text("3333", "wamid.BERLIN3", "And parking?");
  ASSERT_EQ(post_json("/v1/webhooks/whatsapp", wa_moved, "X-Hub-Signature-256",
                      hmac_sha256(berlin_app_secret, wa_moved, dir_.path()))
                .status,
            200);
  ASSERT_EQ(string_member(envelope("wamid.BERLIN3"), "conversation_id"),
            conversation["wamid.BERLIN1"]);
  EXPECT_EQ(redis_.cli("HGET conversation:" + conversation["wamid.BERLIN1"] + " account"), "3333");
  ASSERT_EQ(
      reply("hotel-berlin", "whatsapp", "+4915112345678", conversation["wamid.BERLIN1"]).status,
      202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 5; }, 15s)) << bellhop_.output();
  EXPECT_EQ(graph_.requests()[4].target, "/v21.0/3333/messages");

  ASSERT_EQ(reply("hotel-paris", "sms", "+4915112345678", conversation["SMPARIS1"]).status, 202);
  ASSERT_TRUE(eventually([&] { return twilio_.count() == 1; }, 15s)) << bellhop_.output();
  EXPECT_EQ(twilio_.requests()[0].target, "/2010-04-01/Accounts/ACPARIS/Messages.json");
  EXPECT_NE(twilio_.requests()[0].body.find("From=%2B33700000002"), std::string::npos)
      << twilio_.requests()[0].body;

  ASSERT_EQ(
      reply("hotel-paris", "email", "ana@example.com", conversation["<paris-1@mail.example.com>"])
          .status,
      202);
  const auto mail = dir_.path() / "mail" / "1.json";
  ASSERT_TRUE(eventually([&] { return fs::exists(mail); }, 15s))
      << bellhop_.output() << sink_.output();
  std::ifstream in(mail);
  std::stringstream content;
  content << in.rdbuf();
  auto got = parse_json(content.str());
  EXPECT_EQ(string_member(got, "mail_from"), "accueil@paris.example");
  EXPECT_NE(string_member(got, "data").find("From: Hotel Paris <accueil@paris.example>"),
            std::string::npos)
      << string_member(got, "data");

  ASSERT_EQ(reply("hotel-paris", "webchat", guest_id, webchat_conversation).status, 202);
  auto shown = parse_json(guest.receive(15s).value_or("{}"));
  EXPECT_EQ(string_member(shown, "type"), "message");
  EXPECT_EQ(string_member(shown, "text"), "Answer");

  // --- A reply naming an account: its own property's only -------------------------------------
  ASSERT_EQ(reply("hotel-berlin", "sms", "+4915112345678", conversation["SMBERLIN1"],
                  R"(,"account":"+15550001111")")
                .status,
            202);
  ASSERT_TRUE(eventually([&] { return twilio_.count() == 2; }, 15s)) << bellhop_.output();
  EXPECT_EQ(twilio_.requests()[1].target, "/2010-04-01/Accounts/ACBERLIN/Messages.json");
  const auto named = reply("hotel-berlin", "sms", "+4915112345678", conversation["SMBERLIN1"],
                           R"(,"account":"+33700000002")");
  EXPECT_EQ(named.status, 422) << named.body;
  EXPECT_EQ(string_member(parse_json(named.body)["error"], "code"), "invalid_account");
  // The same from an engine's LPUSH: dead, never sent.
  redis_.cli(R"(LPUSH outbound:sms '{"property_id":"hotel-berlin","channel":"sms",)"
             R"("to":"+4915112345678","text":"x","account":"+33700000002"}')");
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:sms:dead") == "1"; }, 10s));
  EXPECT_NE(redis_.cli("LINDEX outbound:sms:dead 0").find("belongs to another property"),
            std::string::npos);
  EXPECT_EQ(twilio_.count(), 2u);

  // --- A dashboard sees its own property's events only ----------------------------------------
  const auto berlin_seen = frames(berlin_);
  const auto paris_seen = frames(paris_);
  for (const auto& a : arrivals) {
    const bool berlin = a.property == "hotel-berlin";
    const auto& cid = conversation[a.external_id];
    EXPECT_EQ(berlin_seen.find(cid) != std::string::npos, berlin) << a.external_id;
    EXPECT_EQ(paris_seen.find(cid) != std::string::npos, !berlin) << a.external_id;
  }
  EXPECT_EQ(berlin_seen.find("hotel-paris"), std::string::npos) << berlin_seen;
  EXPECT_EQ(berlin_seen.find(webchat_conversation), std::string::npos);
  EXPECT_NE(paris_seen.find(webchat_conversation), std::string::npos);
}

TEST_F(Accounts, TrafficForAnUnknownAccountIsAcknowledgedAndKeptOnInboundUnrouted) {
  const auto wa = whatsapp_text("9999", "wamid.NOBODY", "Hello?");
  auto posted = post_json("/v1/webhooks/whatsapp", wa, "X-Hub-Signature-256",
                          hmac_sha256(berlin_app_secret, wa, dir_.path()));
  EXPECT_EQ(posted.status, 200) << posted.body;
  const std::string status =
      R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930000000","phone_number_id":"9999"},"statuses":[{"id":"wamid.SOMEONE","status":"delivered","timestamp":"1795860060","recipient_id":"4915112345678"}]}}]}]})";
  EXPECT_EQ(post_json("/v1/webhooks/whatsapp", status, "X-Hub-Signature-256",
                      hmac_sha256(paris_app_secret, status, dir_.path()))
                .status,
            200);
  EXPECT_EQ(post_twilio(berlin_twilio_token,
                        "AccountSid=ACBERLIN&Body=Hi&From=%2B4915112345678&"
                        "MessageSid=SMNOBODY&NumMedia=0&To=%2B15559999999")
                .status,
            200);
  const auto mail = mail_to("nobody@berlin.example", "nobody-1", "Hi");
  EXPECT_EQ(post_json("/v1/webhooks/email", mail, "X-Bellhop-Signature",
                      hmac_sha256(email_secret, mail, dir_.path()))
                .status,
            200);
  // What cannot be verified or read is refused, never kept: an AccountSid no account has (no
  // token to verify it with), a body that is not JSON, a wrong signature.
  EXPECT_EQ(post_twilio(berlin_twilio_token,
                        "AccountSid=ACNOBODY&Body=Hi&From=%2B4915112345678&"
                        "MessageSid=SMNOSID&NumMedia=0&To=%2B15550001111")
                .status,
            403);
  const std::string broken = R"({"object":"whatsapp_business_account","entry":[)";
  EXPECT_EQ(post_json("/v1/webhooks/whatsapp", broken, "X-Hub-Signature-256",
                      hmac_sha256(berlin_app_secret, broken, dir_.path()))
                .status,
            400);
  // An account that is not a string is no message.
  const auto typed = post_outbound(
      R"({"property_id":"hotel-berlin","channel":"sms","to":"+4915112345678","text":"x",)"
      R"("account":7})");
  EXPECT_EQ(typed.status, 422) << typed.body;
  EXPECT_EQ(string_member(parse_json(typed.body)["error"], "code"), "invalid_message");
  // Unsigned traffic is still refused, never kept.
  EXPECT_EQ(post_json("/v1/webhooks/whatsapp", wa, "X-Hub-Signature-256", "sha256=00").status, 401);

  ASSERT_EQ(redis_.cli("LLEN inbound:unrouted"), "4") << bellhop_.output();
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "0");
  struct expected {
    std::string channel, account;
  };
  // Newest first.
  const std::vector<expected> kept = {{"email", "nobody@berlin.example"},
                                      {"sms", "+15559999999"},
                                      {"whatsapp", "9999"},
                                      {"whatsapp", "9999"}};
  for (std::size_t i = 0; i < kept.size(); ++i) {
    auto e = parse_json(redis_.cli("LINDEX inbound:unrouted " + std::to_string(i)));
    ASSERT_TRUE(e.IsObject()) << i;
    EXPECT_EQ(string_member(e, "channel"), kept[i].channel) << i;
    EXPECT_EQ(string_member(e, "account"), kept[i].account) << i;
    EXPECT_EQ(string_member(e, "reason"), "unknown_account") << i;
    EXPECT_FALSE(string_member(e, "received_at").empty()) << i;
    ASSERT_TRUE(e.HasMember("payload")) << i;
    // The provider's body as it came: JSON as JSON, Twilio's form as its text.
    EXPECT_EQ(e["payload"].IsObject(), kept[i].channel != "sms") << i;
  }
  EXPECT_NE(redis_.cli("LINDEX inbound:unrouted 1").find("SMNOBODY"), std::string::npos);
  const auto metrics = http_get(port_, "/metrics").body;
  EXPECT_NE(metrics.find(
                R"(bellhop_inbound_unrouted_total{channel="whatsapp",reason="unknown_account"} 2)"),
            std::string::npos)
      << metrics.substr(0, 2000);
  EXPECT_NE(
      metrics.find(R"(bellhop_inbound_unrouted_total{channel="sms",reason="unknown_account"} 1)"),
      std::string::npos);
  // Nothing reached either property's dashboard.
  EXPECT_EQ(frames(berlin_).find("message.created"), std::string::npos);
  EXPECT_EQ(frames(paris_).find("message.created"), std::string::npos);
}

// One number's sender limit holds back that number's messages only: another number of the
// channel keeps sending meanwhile.
class AccountsWithASlowSender : public Accounts {
 protected:
  AccountsWithASlowSender() {  // templates: sent whether or not the guest wrote
    ratelimit_ = R"({"policies": {"whatsapp_business_number":
                      {"algorithm": "gcra", "limit": 1, "window_ms": 4000, "burst": 1}}})";
  }
};

TEST_F(AccountsWithASlowSender, ANumbersSenderLimitDoesNotHoldBackAnotherNumber) {
  auto send = [&](const std::string& property, const std::string& to) {
    return post_outbound(R"({"property_id":")" + property + R"(","channel":"whatsapp","to":")" +
                         to + R"(","template":{"name":"hello","language":"en"}})");
  };
  for (const auto* to : {"+4915100000001", "+4915100000002", "+4915100000003"})
    ASSERT_EQ(send("hotel-berlin", to).status, 202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 1; }, 10s)) << bellhop_.output();
  // Berlin's number has used its one send per 4 s; Paris's has not.
  ASSERT_TRUE(eventually(
      [&] {
        return http_get(port_, "/metrics")
                   .body.find(
                       R"(bellhop_outbound_sends_total{channel="whatsapp",result="deferred"})") !=
               std::string::npos;
      },
      5s))
      << bellhop_.output();
  const auto queued = std::chrono::steady_clock::now();
  ASSERT_EQ(send("hotel-paris", "+33600000001").status, 202);
  ASSERT_TRUE(eventually([&] { return graph_.count() == 2; }, 10s)) << bellhop_.output();
  EXPECT_LT(std::chrono::steady_clock::now() - queued, 2s) << "waited for Berlin's number";
  EXPECT_EQ(graph_.requests()[1].target, "/v21.0/2222/messages");
  // Berlin's others follow at its pace (in the order of their ids, which two messages created
  // in one millisecond may not have).
  ASSERT_TRUE(eventually([&] { return graph_.count() == 4; }, 15s)) << bellhop_.output();
  const std::string later = graph_.requests()[2].body + graph_.requests()[3].body;
  EXPECT_NE(later.find("4915100000002"), std::string::npos) << later;
  EXPECT_NE(later.find("4915100000003"), std::string::npos) << later;
  EXPECT_GE(graph_.requests()[3].at - graph_.requests()[0].at, 7s) << "one per 4 s";
}

}  // namespace
}  // namespace bellhop::test
