// Tenant scoping end to end: two adapter keys, each covering one property, against real bellhop
// and redis-server processes. Nothing one property's client sends (an external id, an
// idempotency key, a message id) reads or writes another property's records (docs/security.md,
// docs/ai-engine.md: keys derived from client input are scoped by property), and a channel sends
// for the property it belongs to only (docs/outbound.md): WhatsApp is hotel-berlin's here, web
// chat hotel-paris's.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <fstream>
#include <map>

#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string berlin_key = "berlin-only-key-0123456789";
const std::string paris_key = "paris-only-key-0123456789";
const std::string jwt_secret = "tenant-scope-jwt-secret-0123456789abcdef";
const std::string paris_guest = "wc_0123456789abcdef0123456789abcdef";  // a web-chat guest

fake_response graph_ok(std::size_t index) {
  return {200, R"({"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],)"
               R"("messages":[{"id":"wamid.)" +
                   std::to_string(index) + R"("}]})"};
}

class TenantScope : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_ = std::make_unique<fake_provider>(
        [](const fake_request&, std::size_t i) { return graph_ok(i); });
  }

  child_process start_bellhop() {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                 local_url(port_))
                          << R"(
      "auth": {"adapter_keys": [
        {"name": "berlin", "key": ")"
                          << berlin_key << R"(", "properties": ["hotel-berlin"]},
        {"name": "paris", "key": ")"
                          << paris_key << R"(", "properties": ["hotel-paris"]}
      ], "jwt_secret": ")" << jwt_secret
                          << R"("},
      "channels": {"whatsapp": {"app_secret": "app-secret", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "service_window_s": 0,
        "api_base_url": ")"
                          << graph_->url() << R"(/v21.0"},
        "webchat": {"property_id": "hotel-paris"}}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / "bellhop.log");
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  static std::map<std::string, std::string> headers(const std::string& key) {
    return {{"Authorization", "Bearer " + key}, {"Content-Type", "application/json"}};
  }

  // Each property's own channel: WhatsApp for hotel-berlin, web chat for hotel-paris.
  static std::string channel_of(const std::string& property) {
    return property == "hotel-berlin" ? "whatsapp" : "webchat";
  }
  static std::string guest_on(const std::string& channel) {
    return channel == "whatsapp" ? "+4915100000002" : paris_guest;
  }

  // A guest's message, posted by an adapter (on WhatsApp unless `channel` says otherwise).
  http_result inbound(const std::string& key, const std::string& property,
                      const std::string& external_id, const std::string& channel = "whatsapp") {
    const std::string from = channel == "whatsapp" ? "+4915100000001" : paris_guest;
    return http_request(port_, "POST", "/v1/messages/inbound",
                        R"({"property_id":")" + property + R"(","channel":")" + channel +
                            R"(","external_id":")" + external_id + R"(","from":")" + from +
                            R"(","text":"hello"})",
                        headers(key));
  }

  // `extra`: more members of the message, each with a leading comma. On the property's own
  // channel unless `channel` names another.
  http_result outbound(const std::string& key, const std::string& property,
                       const std::string& extra, const std::string& channel = {}) {
    return http_request(port_, "POST", "/v1/messages/outbound",
                        outbound_json(property, extra, channel), headers(key));
  }

  static std::string outbound_json(const std::string& property, const std::string& extra,
                                   std::string channel = {}) {
    if (channel.empty()) channel = channel_of(property);
    return R"({"property_id":")" + property + R"(","channel":")" + channel + R"(","to":")" +
           guest_on(channel) + R"(","text":"hi")" + extra + "}";
  }

  std::string sent(const std::string& channel) {
    return redis_.cli("HGET outbound:" + channel + ":stats sent");
  }

  static std::string field(const std::string& body, const char* name) {
    rapidjson::Document d;
    d.Parse(body.c_str());
    if (!d.IsObject() || !d.HasMember(name) || !d[name].IsString()) return {};
    return d[name].GetString();
  }

  redis_server redis_;
  std::unique_ptr<fake_provider> graph_;
  temp_dir dir_;
  std::uint16_t port_ = 0;
};

TEST_F(TenantScope, AnExternalIdOfOnePropertyNeverMakesAnotherPropertysMessageADuplicate) {
  auto bellhop = start_bellhop();
  const auto berlin = inbound(berlin_key, "hotel-berlin", "wamid.same");
  ASSERT_EQ(berlin.status, 202) << berlin.body;
  const auto paris = inbound(paris_key, "hotel-paris", "wamid.same");
  ASSERT_EQ(paris.status, 202) << "another property's message is new: " << paris.body;
  EXPECT_NE(field(paris.body, "id"), field(berlin.body, "id"));

  // Within a property the external id still deduplicates, each to its own first message.
  const auto berlin_again = inbound(berlin_key, "hotel-berlin", "wamid.same");
  EXPECT_EQ(berlin_again.status, 200) << berlin_again.body;
  EXPECT_EQ(field(berlin_again.body, "id"), field(berlin.body, "id"));
  const auto paris_again = inbound(paris_key, "hotel-paris", "wamid.same");
  EXPECT_EQ(paris_again.status, 200) << paris_again.body;
  EXPECT_EQ(field(paris_again.body, "id"), field(paris.body, "id"));
  EXPECT_EQ(redis_.cli("GET dedup:hotel-berlin:whatsapp:wamid.same"), field(berlin.body, "id"));
  EXPECT_EQ(redis_.cli("GET dedup:hotel-paris:whatsapp:wamid.same"), field(paris.body, "id"));
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "2");
}

TEST_F(TenantScope, ALegacyDedupKeyFromBeforeTheUpgradeCountsForItsOwnPropertyOnly) {
  // Written by the previous version: the unscoped key and its message's record.
  const std::string first = "01KBLEGACY0000000000000001";
  redis_.cli("SET dedup:whatsapp:wamid.before " + first + " EX 600");
  redis_.cli("HSET message:" + first + " id " + first +
             " status queued direction inbound property_id hotel-berlin channel whatsapp");
  auto bellhop = start_bellhop();

  const auto retry = inbound(berlin_key, "hotel-berlin", "wamid.before");
  EXPECT_EQ(retry.status, 200) << "the provider's retry is a duplicate: " << retry.body;
  EXPECT_EQ(field(retry.body, "id"), first);
  EXPECT_EQ(redis_.cli("GET dedup:hotel-berlin:whatsapp:wamid.before"), first)
      << "the scoped key answers the next retry";
  const auto paris = inbound(paris_key, "hotel-paris", "wamid.before");
  EXPECT_EQ(paris.status, 202) << "another property's message is new: " << paris.body;
  EXPECT_EQ(redis_.cli("LLEN inbound:messages"), "1");
  EXPECT_EQ(redis_.cli("HGET message:" + first + " property_id"), "hotel-berlin");
}

TEST_F(TenantScope, AnIdempotencyKeyOfOnePropertyNeverAnswersForAnother) {
  auto bellhop = start_bellhop();
  const auto berlin = outbound(berlin_key, "hotel-berlin", R"(,"idempotency_key":"k-1")");
  ASSERT_EQ(berlin.status, 202) << berlin.body;
  const auto paris = outbound(paris_key, "hotel-paris", R"(,"idempotency_key":"k-1")");
  ASSERT_EQ(paris.status, 202) << "another property's message is new: " << paris.body;
  EXPECT_NE(field(paris.body, "id"), field(berlin.body, "id"));
  const auto berlin_again = outbound(berlin_key, "hotel-berlin", R"(,"idempotency_key":"k-1")");
  EXPECT_EQ(berlin_again.status, 200) << berlin_again.body;
  EXPECT_EQ(field(berlin_again.body, "id"), field(berlin.body, "id"));
  // Both are sent, once each, each on its property's channel.
  ASSERT_TRUE(eventually([&] { return sent("whatsapp") == "1" && sent("webchat") == "1"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(graph_->count(), 1u);
  EXPECT_EQ(redis_.cli("HGET message:" + field(paris.body, "id") + " property_id"), "hotel-paris");
}

TEST_F(TenantScope, ALegacyIdempotencyKeyCountsForItsOwnPropertyOnly) {
  const std::string first = "01KBLEGACY0000000000000002";
  redis_.cli("SET idempotency:outbound:k-old " + first + " EX 600");
  redis_.cli("HSET message:" + first + " id " + first +
             " status sent direction outbound property_id hotel-berlin channel whatsapp");
  auto bellhop = start_bellhop();
  const auto retry = outbound(berlin_key, "hotel-berlin", R"(,"idempotency_key":"k-old")");
  EXPECT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(field(retry.body, "id"), first);
  const auto paris = outbound(paris_key, "hotel-paris", R"(,"idempotency_key":"k-old")");
  EXPECT_EQ(paris.status, 202) << paris.body;
  EXPECT_NE(field(paris.body, "id"), first);
}

TEST_F(TenantScope, AClientChosenIdNeverTakesOverAnotherMessagesRecordOverHttp) {
  auto bellhop = start_bellhop();
  const auto guest = inbound(berlin_key, "hotel-berlin", "wamid.victim");
  ASSERT_EQ(guest.status, 202) << guest.body;
  const auto victim = field(guest.body, "id");
  const auto before = redis_.cli("HGETALL message:" + victim);

  // Another property's key, and the owner's key too (an inbound record is no outbound one).
  for (const auto& [key, property] :
       {std::pair{paris_key, "hotel-paris"}, std::pair{berlin_key, "hotel-berlin"}}) {
    const auto r = outbound(key, property, R"(,"id":")" + victim + "\"");
    EXPECT_EQ(r.status, 409) << property << ": " << r.body;
    EXPECT_NE(r.body.find("id_taken"), std::string::npos) << r.body;
  }
  EXPECT_EQ(redis_.cli("HGETALL message:" + victim), before);
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp") + redis_.cli("ZCARD outbound:whatsapp:ready"),
            "00");

  // A client's own id: queued once; a resend is a duplicate; another property cannot reuse it.
  const std::string own = "01KBCLIENT0000000000000001";
  const auto first = outbound(berlin_key, "hotel-berlin", R"(,"id":")" + own + "\"");
  EXPECT_EQ(first.status, 202) << first.body;
  EXPECT_EQ(field(first.body, "id"), own);
  const auto resend = outbound(berlin_key, "hotel-berlin", R"(,"id":")" + own + "\"");
  EXPECT_EQ(resend.status, 200) << resend.body;
  const auto other = outbound(paris_key, "hotel-paris", R"(,"id":")" + own + "\"");
  EXPECT_EQ(other.status, 409) << other.body;
  ASSERT_TRUE(
      eventually([&] { return redis_.cli("HGET message:" + own + " status") == "sent"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(redis_.cli("HGET message:" + own + " property_id"), "hotel-berlin");
  EXPECT_EQ(graph_->count(), 1u);
}

TEST_F(TenantScope, AnEnginesElementWithAnotherMessagesIdIsDeadLetteredAndTheRecordKept) {
  auto bellhop = start_bellhop();
  const auto guest = inbound(berlin_key, "hotel-berlin", "wamid.victim2");
  ASSERT_EQ(guest.status, 202) << guest.body;
  const auto victim = field(guest.body, "id");
  const auto before = redis_.cli("HGETALL message:" + victim);

  redis_.cli("LPUSH outbound:whatsapp '" +
             outbound_json("hotel-berlin", R"(,"id":")" + victim + "\"") + "'");
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "1"; }, 10s))
      << bellhop.output();
  const auto letter = redis_.cli("LINDEX outbound:whatsapp:dead 0");
  EXPECT_NE(letter.find("belongs to another message"), std::string::npos) << letter;

  // A message of its own, pushed after it, is sent: the refused one never was.
  redis_.cli("LPUSH outbound:whatsapp '" + outbound_json("hotel-berlin", "") + "'");
  ASSERT_TRUE(eventually([&] { return graph_->count() == 1; }, 10s)) << bellhop.output();
  ASSERT_TRUE(
      eventually([&] { return redis_.cli("HGET outbound:whatsapp:stats sent") == "1"; }, 10s));
  EXPECT_EQ(redis_.cli("HGETALL message:" + victim), before);
  EXPECT_EQ(redis_.cli("HGET outbound:whatsapp:stats invalid"), "1");
}

TEST_F(TenantScope, AStaffMembersClientMsgIdInTwoPropertiesIsTwoRepliesEachSent) {
  auto bellhop = start_bellhop();
  const auto berlin = inbound(berlin_key, "hotel-berlin", "wamid.guest-b");
  const auto paris = inbound(paris_key, "hotel-paris", "wc.guest-p", "webchat");
  ASSERT_EQ(berlin.status, 202) << berlin.body;
  ASSERT_EQ(paris.status, 202) << paris.body;

  ws_client c;
  const auto token = contract::mint_staff_token(
      jwt_secret, "alice", {"hotel-berlin", "hotel-paris"}, std::chrono::system_clock::now(), 1h);
  ASSERT_EQ(c.connect(port_, "/v1/realtime?token=" + token), 101) << c.refusal_body();
  ASSERT_TRUE(c.receive().has_value());  // welcome
  std::vector<std::string> acks;
  const std::pair<const char*, const http_result*> guests[] = {{"hotel-berlin", &berlin},
                                                               {"hotel-paris", &paris}};
  for (const auto& [property, answer] : guests) {
    ASSERT_TRUE(c.send(std::string(R"({"type":"reply","property_id":")") + property +
                       R"(","conversation_id":")" + field(answer->body, "conversation_id") +
                       R"(","text":"Welcome.","client_msg_id":"m-1"})"));
    const auto ack = c.receive();
    ASSERT_TRUE(ack.has_value());
    ASSERT_EQ(field(*ack, "type"), "ack") << *ack;
    acks.push_back(field(*ack, "id"));
  }
  EXPECT_NE(acks[0], acks[1]) << "the same client_msg_id in another property is a new reply";
  EXPECT_EQ(redis_.cli("HGET message:" + acks[1] + " property_id"), "hotel-paris");

  // Both are filed under the records the replies wrote, and sent on their properties' channels.
  ASSERT_TRUE(eventually([&] { return sent("whatsapp") == "1" && sent("webchat") == "1"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(redis_.cli("HGET message:" + acks[0] + " status"), "sent");
  EXPECT_EQ(redis_.cli("HGET message:" + acks[1] + " status"), "sent");
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp:dead"), "0");
  EXPECT_EQ(redis_.cli("LLEN outbound:webchat:dead"), "0");
}

TEST_F(TenantScope, AMessageOfAnotherPropertyIsNotFound) {
  auto bellhop = start_bellhop();
  const auto guest = inbound(berlin_key, "hotel-berlin", "wamid.private");
  ASSERT_EQ(guest.status, 202) << guest.body;
  const auto id = field(guest.body, "id");
  auto get = [&](const std::string& key) {
    return http_request(port_, "GET", "/v1/messages/" + id, "",
                        {{"Authorization", "Bearer " + key}});
  };
  EXPECT_EQ(get(berlin_key).status, 200);
  const auto other = get(paris_key);
  EXPECT_EQ(other.status, 404) << other.body;
  EXPECT_EQ(other.body.find("hotel-berlin"), std::string::npos) << other.body;
}

// The error of an answer: {"error":{"code","message","field"}}.
std::pair<std::string, std::string> error_of(const std::string& body) {
  rapidjson::Document d;
  d.Parse(body.c_str());
  if (!d.IsObject() || !d.HasMember("error") || !d["error"].IsObject()) return {};
  const auto& e = d["error"];
  auto get = [&](const char* name) {
    return e.HasMember(name) && e[name].IsString() ? std::string(e[name].GetString())
                                                   : std::string();
  };
  return {get("code"), get("field")};
}

TEST_F(TenantScope, APostForAChannelOfAnotherPropertyIsRefusedAndNothingQueued) {
  auto bellhop = start_bellhop();
  // hotel-paris's key, for hotel-paris, on hotel-berlin's WhatsApp number.
  const auto refused = outbound(paris_key, "hotel-paris", "", "whatsapp");
  EXPECT_EQ(refused.status, 422) << refused.body;
  EXPECT_EQ(error_of(refused.body),
            (std::pair<std::string, std::string>{"property_mismatch", "property_id"}))
      << refused.body;
  EXPECT_EQ(refused.body.find("hotel-berlin"), std::string::npos) << refused.body;
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "0");
  // Its own channel takes it, and hotel-berlin's message still goes out on WhatsApp.
  EXPECT_EQ(outbound(paris_key, "hotel-paris", "").status, 202);
  const auto own = outbound(berlin_key, "hotel-berlin", "");
  ASSERT_EQ(own.status, 202) << own.body;
  ASSERT_TRUE(eventually([&] { return sent("whatsapp") == "1" && sent("webchat") == "1"; }, 10s))
      << bellhop.output();
  EXPECT_EQ(graph_->count(), 1u);
  EXPECT_EQ(redis_.cli("HGET message:" + field(own.body, "id") + " status"), "sent");
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp:dead"), "0");
}

TEST_F(TenantScope, AnEnginesElementForAChannelOfAnotherPropertyIsDeadLetteredAndNeverSent) {
  auto bellhop = start_bellhop();
  const auto guest = inbound(berlin_key, "hotel-berlin", "wamid.victim3");
  ASSERT_EQ(guest.status, 202) << guest.body;
  const auto victim = field(guest.body, "id");
  const auto before = redis_.cli("HGETALL message:" + victim);
  const std::string own_id = "01KBPARIS00000000000000001";
  for (const auto& id : {own_id, victim})
    redis_.cli("LPUSH outbound:whatsapp '" +
               outbound_json("hotel-paris", R"(,"id":")" + id + "\"", "whatsapp") + "'");
  // hotel-berlin's message, pushed behind them: once it is sent, both were taken before it.
  const std::string berlin_id = "01KBBERLIN0000000000000001";
  redis_.cli("LPUSH outbound:whatsapp '" +
             outbound_json("hotel-berlin", R"(,"id":")" + berlin_id + "\"") + "'");
  ASSERT_TRUE(eventually([&] { return sent("whatsapp") == "1"; }, 10s)) << bellhop.output();
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "2"; }, 10s));
  EXPECT_EQ(graph_->count(), 1u) << "the provider saw hotel-berlin's message only";
  EXPECT_EQ(redis_.cli("HGET message:" + berlin_id + " status"), "sent");
  EXPECT_EQ(redis_.cli("HGET outbound:whatsapp:stats invalid"), "2");
  for (int i = 0; i < 2; ++i) {
    const auto letter = redis_.cli("LINDEX outbound:whatsapp:dead " + std::to_string(i));
    EXPECT_EQ(field(letter, "reason"),
              "invalid: property_id hotel-paris is not the property of channel whatsapp")
        << letter;
  }
  EXPECT_EQ(redis_.cli("EXISTS message:" + own_id), "0") << "nothing recorded for it";
  EXPECT_EQ(redis_.cli("HGETALL message:" + victim), before);
}

TEST_F(TenantScope, AMessageOfAnotherPropertyFiledBeforeTheUpgradeIsDeadWhenItsTurnComes) {
  // Filed in the ready set by the previous version, which did not check the property.
  const std::string id = "01KBFILED00000000000000001";
  redis_.cli("ZADD outbound:whatsapp:ready 5000000000001 '{\"id\":\"" + id +
             R"(","priority":5,"property_id":"hotel-paris","channel":"whatsapp",)"
             R"("to":"+4915100000002","text":"hi","attachments":[],"conversation_id":null,)"
             R"("reply_to":null,"idempotency_key":null,"created_at":"2026-12-01T10:00:00Z"}')");
  redis_.cli("HSET message:" + id + " id " + id +
             " status queued direction outbound property_id hotel-paris channel whatsapp");
  auto bellhop = start_bellhop();
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "1"; }, 10s))
      << bellhop.output();
  const auto letter = redis_.cli("LINDEX outbound:whatsapp:dead 0");
  EXPECT_EQ(field(letter, "error_code"), "property_mismatch") << letter;
  EXPECT_EQ(field(letter, "reason"),
            "property_id hotel-paris is not the property of channel whatsapp")
      << letter;
  EXPECT_EQ(redis_.cli("HGET message:" + id + " status"), "failed");
  // The channel goes on with its own property's messages.
  ASSERT_EQ(outbound(berlin_key, "hotel-berlin", "").status, 202);
  ASSERT_TRUE(eventually([&] { return sent("whatsapp") == "1"; }, 10s)) << bellhop.output();
  EXPECT_EQ(graph_->count(), 1u);
}

TEST_F(TenantScope, AStaffReplyInAConversationOnAChannelOfAnotherPropertyIsRefused) {
  auto bellhop = start_bellhop();
  // An adapter's guest message of hotel-paris on WhatsApp, which is hotel-berlin's here.
  const auto guest = inbound(paris_key, "hotel-paris", "wamid.paris-on-whatsapp");
  ASSERT_EQ(guest.status, 202) << guest.body;
  ws_client c;
  const auto token = contract::mint_staff_token(jwt_secret, "alice", {"hotel-paris"},
                                                std::chrono::system_clock::now(), 1h);
  ASSERT_EQ(c.connect(port_, "/v1/realtime?token=" + token), 101) << c.refusal_body();
  ASSERT_TRUE(c.receive().has_value());  // welcome
  ASSERT_TRUE(c.send(R"({"type":"reply","property_id":"hotel-paris","conversation_id":")" +
                     field(guest.body, "conversation_id") +
                     R"(","text":"Welcome.","client_msg_id":"m-1"})"));
  const auto answer = c.receive();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(field(*answer, "type"), "error") << *answer;
  EXPECT_EQ(field(*answer, "code"), "forbidden") << *answer;
  EXPECT_EQ(field(*answer, "ref"), "m-1") << *answer;
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "0");
  EXPECT_EQ(graph_->count(), 0u);
}

}  // namespace
}  // namespace bellhop::test
