// Escalation end to end (docs/properties.md, "Escalation"): a real bellhop and redis-server, a
// property whose escalation contact has an SMS number and an email address (escalation.after_s
// 2), Twilio played by fake_provider, the mail server by tests/support/smtp_sink.py, a staff
// dashboard on /v1/realtime. A guest handed to staff whom nobody reads or answers notifies the
// contact once (one SMS, one email, a conversation.updated "escalated"); staff reading or
// answering first notifies nobody; more guest messages after the escalation notify nobody.
//
// "Nobody was notified" is proven without sleeps: the escalation pass takes due waits oldest
// first and every escalation is an event in the property's seq order, so when a conversation
// whose wait began later escalates, every wait that began earlier and was still running has
// escalated in that pass or before, and its event came first.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/smtp_sink.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string jwt_secret = "escalation-e2e-jwt-secret-0123456789abcdef";
const std::string adapter_key = "escalation-test-key-0123456789";
const std::string duty_sms = "+4930999999";
const std::string duty_email = "duty@hotel-berlin.example";

// application/x-www-form-urlencoded: the value of `name`, decoded ("" when absent).
std::string form_value(const std::string& form, const std::string& name) {
  std::istringstream pairs(form);
  for (std::string pair; std::getline(pairs, pair, '&');) {
    if (pair.rfind(name + "=", 0) != 0) continue;
    std::string out;
    for (std::size_t i = name.size() + 1; i < pair.size(); ++i) {
      if (pair[i] == '+') {
        out += ' ';
      } else if (pair[i] == '%' && i + 2 < pair.size()) {
        out += static_cast<char>(std::stoi(pair.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        out += pair[i];
      }
    }
    return out;
  }
  return {};
}

// A quoted-printable body decoded (soft line breaks joined, =XX undone; other text as it is).
std::string unquote_printable(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '=') {
      out += text[i];
    } else if (text.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;
    } else if (text.compare(i + 1, 1, "\n") == 0) {
      i += 1;
    } else if (i + 2 < text.size() && std::isxdigit(static_cast<unsigned char>(text[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2]))) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

class EscalationEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::uint16_t smtp_port = sink_.start();
    ASSERT_NE(smtp_port, 0) << sink_.output();

    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                 "https://gw.example-hotels.com")
                          << R"(
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400},
      "properties": [
        {"id": "hotel-berlin", "name": "Hotel Berlin", "time_zone": "Europe/Berlin",
         "escalation": {"after_s": 2, "sms": ")"
                          << duty_sms << R"(", "email": ")" << duty_email << R"("}}],
      "auth": {"adapter_keys": [{"name": "engine-berlin", "key": ")"
                          << adapter_key << R"(",
                                  "properties": ["hotel-berlin"]}],
               "jwt_secret": ")"
                          << jwt_secret << R"("},
      "channels": {
        "twilio": {"api_base_url": ")"
                          << twilio_.url() << R"(", "account_sid": "ACBERLIN",
          "auth_token": "twilio-token-berlin-0123", "from": "+15550001111",
          "property_id": "hotel-berlin"},
        "email": {"webhook_secret": "email-webhook-secret",
          "from_address": "frontdesk@berlin.example", "property_id": "hotel-berlin",
          "smtp_url": "smtp://127.0.0.1:)"
                          << smtp_port << R"(",
          "smtp_username": "hotel-smtp", "smtp_password": "smtp-password-0123",
          "smtp_ca_file": ")"
                          << sink_.cert().string() << R"("}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
    const auto token = contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                                  std::chrono::system_clock::now(), 1h);
    ASSERT_EQ(dashboard_.connect(port_, "/v1/realtime?token=" + token), 101);
    ASSERT_TRUE(dashboard_.receive().has_value());  // welcome
    dashboard_.send(R"({"type":"subscribe","property_id":"hotel-berlin","since":0})");
  }

  // The guest texts the hotel's number (POST /v1/messages/inbound, as an adapter would);
  // returns the conversation.
  std::string guest_writes(const std::string& guest, const std::string& external_id,
                           const std::string& text) {
    const auto r = http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":"hotel-berlin","channel":"sms","external_id":")" + external_id +
            R"(","from":")" + guest + R"(","text":")" + text + "\"}",
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + adapter_key}});
    EXPECT_EQ(r.status, 202) << r.body << bellhop_.output();
    const auto cid = contract::make_conversation_id("hotel-berlin", "sms", guest);
    EXPECT_TRUE(eventually([&] { return redis_.cli("EXISTS conversation:" + cid) == "1"; }));
    return cid;
  }

  // The engine hands the conversation to staff (a wait starts: the guest's message is unread).
  void hand_off(const std::string& cid) {
    auto r = post("/v1/conversations/" + cid + "/handoff", R"({"reason":"needs a person"})",
                  adapter_key);
    ASSERT_EQ(r.status, 200) << r.body;
  }

  http_result post(const std::string& target, const std::string& body, const std::string& bearer) {
    return http_request(
        port_, "POST", target, body,
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + bearer}});
  }

  // The dashboard's frames up to and including the first one `pred` accepts (parsed), or all
  // received in 15 s (then the last one is not accepted).
  template <typename Pred>
  std::vector<rapidjson::Document> frames_until(Pred pred) {
    std::vector<rapidjson::Document> out;
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = dashboard_.receive(1s);
      if (!f) continue;
      seen_ += *f + "\n";
      out.push_back(parse_json(*f));
      if (out.back().IsObject() && pred(out.back())) return out;
    }
    ADD_FAILURE() << "no such frame; frames seen:\n" << seen_ << bellhop_.output();
    return out;
  }

  static bool is_change(const rapidjson::Value& frame, const std::string& change,
                        const std::string& cid = "") {
    return frame.IsObject() && string_member(frame, "event") == "conversation.updated" &&
           frame.HasMember("data") && string_member(frame["data"], "change") == change &&
           (cid.empty() || string_member(frame["data"], "conversation_id") == cid);
  }

  // The conversations escalated among `frames`, in order.
  static std::vector<std::string> escalated(const std::vector<rapidjson::Document>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames)
      if (is_change(f, "escalated")) out.push_back(string_member(f["data"], "conversation_id"));
    return out;
  }

  // The escalation contact's SMS bodies, as Twilio received them.
  std::vector<std::string> duty_texts() {
    std::vector<std::string> out;
    for (const auto& r : twilio_.requests())
      if (form_value(r.body, "To") == duty_sms) out.push_back(form_value(r.body, "Body"));
    return out;
  }

  // The mails the sink accepted, in arrival order (each {"rcpt_tos", "data"}).
  std::vector<rapidjson::Document> mails() {
    std::vector<rapidjson::Document> out;
    for (int n = 1;; ++n) {
      std::ifstream in(dir_.path() / "mail" / (std::to_string(n) + ".json"));
      if (!in) return out;
      std::stringstream content;
      content << in.rdbuf();
      out.push_back(parse_json(content.str()));
    }
  }

  // A counter of GET /metrics (no labels), or -1.
  long long metric(const std::string& name) {
    const auto body = http_get(port_, "/metrics").body;
    const auto at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  }

  // What reached Twilio and what the email queue counted, for failure messages.
  std::string deliveries() {
    std::string out = "Twilio received:\n";
    for (const auto& r : twilio_.requests()) out += r.body + "\n";
    return out + "outbound:email:stats: " + redis_.cli("HGETALL outbound:email:stats") + "\n";
  }

  temp_dir dir_;
  redis_server redis_;
  fake_provider twilio_{[](const fake_request&, std::size_t i) {
    return fake_response{201, R"({"sid":"SMOUT)" + std::to_string(i) + R"(","status":"queued"})"};
  }};
  std::uint16_t port_ = 0;
  smtp_sink sink_{dir_.path()};
  child_process bellhop_;
  ws_client dashboard_;
  std::string seen_;
};

TEST_F(EscalationEndToEnd, FiresOnceAfterTheConfiguredTimeAndNotWhenStaffReadOrAnswerFirst) {
  // (b) Handed to staff and read at once, well within after_s (2 s): its wait ends.
  const auto read_first = guest_writes("+4915100000002", "SMIN-B1", "Is the spa open?");
  hand_off(read_first);
  auto r = post("/v1/conversations/" + read_first + "/read", "",
                contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                           std::chrono::system_clock::now(), 1h));
  ASSERT_EQ(r.status, 200) << r.body;

  // (c) Handed to staff and answered at once from the dashboard: its wait ends.
  const auto answered = guest_writes("+4915100000003", "SMIN-C1", "Late checkout?");
  hand_off(answered);
  dashboard_.send(R"({"type":"reply","property_id":"hotel-berlin","conversation_id":")" + answered +
                  R"(","client_msg_id":"r1","text":"Until 2 pm, no charge."})");

  // (a) Handed to staff after both, and left alone: escalated once, after after_s.
  const auto waits = guest_writes("+4915100000001", "SMIN-A1", "My room is cold");
  const auto handed_at = std::chrono::steady_clock::now();
  hand_off(waits);
  auto frames = frames_until([&](const auto& f) { return is_change(f, "escalated", waits); });
  const auto waited = std::chrono::steady_clock::now() - handed_at;
  EXPECT_GE(waited, 2s) << "not before escalation.after_s";
  // The waits of (b) and (c) began earlier: had they still run, their escalations would be
  // before (a)'s in the property's event order.
  EXPECT_EQ(escalated(frames), std::vector<std::string>{waits}) << seen_;
  bool read_seen = false, reply_acked = false;
  for (const auto& f : frames) {
    read_seen |= is_change(f, "read", read_first);
    reply_acked |= f.IsObject() && string_member(f, "type") == "ack" &&
                   string_member(f, "client_msg_id") == "r1";
  }
  EXPECT_TRUE(read_seen) << seen_;
  EXPECT_TRUE(reply_acked) << seen_;
  ASSERT_FALSE(frames.empty());
  const auto& e = frames.back()["data"];
  EXPECT_EQ(string_member(e, "property_id"), "hotel-berlin");
  EXPECT_EQ(string_member(e, "mode"), "human");
  EXPECT_EQ(string_member(e, "by"), "bellhop");
  EXPECT_EQ(string_member(e, "guest"), "+4915100000001");
  EXPECT_EQ(redis_.cli("ZSCORE property:hotel-berlin:escalation " + read_first), "");
  EXPECT_EQ(redis_.cli("ZSCORE property:hotel-berlin:escalation " + answered), "");
  EXPECT_EQ(redis_.cli("HEXISTS conversation:" + waits + " escalated_at"), "1");

  // The contact gets one SMS (from the property's number) and one email, naming the property,
  // the guest and the conversation.
  ASSERT_TRUE(eventually([&] { return duty_texts().size() == 1 && mails().size() == 1; }, 15s))
      << bellhop_.output() << sink_.output() << deliveries();
  const auto sms = duty_texts()[0];
  EXPECT_NE(sms.find("Hotel Berlin"), std::string::npos) << sms;
  EXPECT_NE(sms.find(waits), std::string::npos) << sms;
  EXPECT_NE(sms.find("+4915100000001"), std::string::npos) << sms;
  const auto all_mail = mails();
  const auto& mail = all_mail[0];
  ASSERT_TRUE(mail.IsObject() && mail["rcpt_tos"].IsArray() && mail["data"].IsString());
  ASSERT_EQ(mail["rcpt_tos"].Size(), 1u);
  EXPECT_EQ(std::string(mail["rcpt_tos"][0].GetString()), duty_email);
  const auto data = unquote_printable(mail["data"].GetString());
  EXPECT_NE(data.find("Subject: Guest waiting at Hotel Berlin"), std::string::npos) << data;
  EXPECT_NE(data.find(waits), std::string::npos) << data;
  // The staff reply of (c) went to its guest, not to the contact.
  EXPECT_TRUE(eventually([&] {
    for (const auto& req : twilio_.requests())
      if (form_value(req.body, "To") == "+4915100000003") return true;
    return false;
  }));
  EXPECT_TRUE(eventually([&] { return metric("bellhop_escalations_total") == 1; }))
      << http_get(port_, "/metrics").body;

  // The guest of (a) writes again, twice: nothing more until staff read or answer. Proven by a
  // fourth conversation handed off after those messages: its escalation comes after any (a)
  // could have had again.
  guest_writes("+4915100000001", "SMIN-A2", "Hello?");
  guest_writes("+4915100000001", "SMIN-A3", "Anyone there?");
  EXPECT_EQ(redis_.cli("ZSCORE property:hotel-berlin:escalation " + waits), "")
      << "no new wait while escalated";
  const auto later = guest_writes("+4915100000004", "SMIN-D1", "Taxi at 6?");
  hand_off(later);
  frames = frames_until([&](const auto& f) { return is_change(f, "escalated", later); });
  EXPECT_EQ(escalated(frames), std::vector<std::string>{later}) << seen_;
  ASSERT_TRUE(eventually([&] { return duty_texts().size() == 2 && mails().size() == 2; }, 15s))
      << bellhop_.output() << sink_.output() << deliveries();
  EXPECT_NE(duty_texts()[1].find(later), std::string::npos) << duty_texts()[1];
  EXPECT_EQ(duty_texts().size(), 2u);
  EXPECT_EQ(mails().size(), 2u);
  EXPECT_EQ(metric("bellhop_escalations_total"), 2);
  EXPECT_EQ(metric("bellhop_escalation_errors_total"), 0);
}

}  // namespace
}  // namespace bellhop::test
