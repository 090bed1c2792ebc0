// The upgrade to properties and accounts (docs/upgrading.md, "Upgrading to properties and
// accounts (issue 16)"): a config of the version before it and Redis data as that version wrote
// it keep working. A real redis-server seeded before Bellhop starts, a real bellhop, the Graph
// API played by fake_provider. The seeded shapes are those of the previous version's
// docs/redis-keys.md and Lua scripts: a conversation record without mode, last_inbound_at,
// unread or account; envelopes without account or conversation_mode; an engine's outbound
// element without source or account; dedup keys of both earlier forms.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string jwt_secret = "upgrade-e2e-jwt-secret-0123456789abcdef";
const std::string adapter_key = "upgrade-test-key-0123456789";
const std::string app_secret = "whatsapp-app-secret";
const std::string guest = "+4915112345678";
const std::string conversation = contract::make_conversation_id("hotel-berlin", "whatsapp", guest);
// Messages the previous version took in: one a few minutes ago, one three days ago (whose dedup
// key is of the form from before issue 14), one waiting for an engine, one an engine had taken
// when it crashed.
const std::string old_id = "01KBQZ3M4N5P6Q7R8S9T0VWXYZ";
const std::string older_id = "01KBJ0A1B2C3D4E5F6G7H8J9KM";
const std::string waiting_id = "01KBQZ4A5B6C7D8E9F0G1H2J3K";
const std::string taken_id = "01KBQZ5A5B6C7D8E9F0G1H2J3K";
const std::string posted_id = "01KBQZ6A5B6C7D8E9F0G1H2J3K";
const std::int64_t old_seq = 41;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::int64_t epoch_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// X-Hub-Signature-256: "sha256=" + hex HMAC-SHA256 of the body (Python's hmac, not Bellhop's).
std::string hub_signature(const std::string& body, const fs::path& dir) {
  const auto file = dir / "signed-body";
  std::ofstream(file, std::ios::binary) << body;
  auto out = run_capture("/usr/bin/python3 -c " +
                         shell_quote("import hmac, hashlib, sys; print(hmac.new(sys.argv[1]."
                                     "encode(), open(sys.argv[2], 'rb').read(), "
                                     "hashlib.sha256).hexdigest())") +
                         " " + shell_quote(app_secret) + " " + shell_quote(file.string()));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return "sha256=" + out;
}

std::string whatsapp_text(const std::string& id, const std::string& text) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930000000","phone_number_id":"1234"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":")" +
         id + R"(","timestamp":"1795860000","type":"text","text":{"body":")" + text +
         R"("}}]}}]}]})";
}

// An envelope as the previous version wrote it (docs/ai-engine.md of that version: these
// fields in this order, no account, no conversation_mode).
std::string old_envelope(const std::string& id, const std::string& external_id,
                         const std::string& text, const std::string& received_at) {
  return R"({"id":")" + id +
         R"(","property_id":"hotel-berlin","channel":"whatsapp","external_id":")" + external_id +
         R"(","from":")" + guest + R"(","to":"1234","guest_name":"Ana","text":")" + text +
         R"(","content_type":"text","attachments":[],"sent_at":null,"metadata":{},)"
         R"("conversation_id":")" +
         conversation + R"(","received_at":")" + received_at + R"(","direction":"inbound"})";
}

class UpgradeProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    seed_previous_version();
    port_ = free_port();
    // The previous version's config: no properties section, each channel's one account in the
    // section's own keys, adapter keys with property lists.
    config_ = dir_.path() / "config.json";
    std::ofstream(config_) << "{"
                           << bellhop_config_head(port_, dir_.path() / "data", redis_.url(),
                                                  "https://gw.example-hotels.com")
                           << R"(
      "auth": {"adapter_keys": [{"name": "engine-berlin", "key": ")"
                           << adapter_key << R"(",
                                  "properties": ["hotel-berlin"]}],
               "jwt_secret": ")"
                           << jwt_secret << R"("},
      "channels": {
        "whatsapp": {"app_secret": ")"
                           << app_secret << R"(", "verify_token": "verify",
          "access_token": "graph-token", "phone_number_id": "1234",
          "property_id": "hotel-berlin", "api_base_url": ")"
                           << graph_.url() << R"(/v21.0"},
        "twilio": {"account_sid": "ACBERLIN", "auth_token": "twilio-token-0123",
          "from": "+15550001111", "property_id": "hotel-berlin", "api_base_url": ")"
                           << twilio_.url() << R"("},
        "email": {"webhook_secret": "email-webhook-secret", "from_address": "frontdesk@berlin.example",
          "from_name": "Hotel Berlin", "smtp_url": "smtp://127.0.0.1:)"
                           << free_port() << R"(", "property_id": "hotel-berlin"},
        "webchat": {"property_id": "hotel-berlin"}}
    })";
    child_process check({BELLHOP_BINARY, "check-config", "--config", config_.string()},
                        dir_.path() / "check-config.log");
    ASSERT_EQ(check.wait(20s).value_or(-1), 0) << check.output();
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config_.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // Redis as the previous version left it: every write below is one its scripts made.
  void seed_previous_version() {
    const auto now = std::chrono::system_clock::now();
    const auto old_at = now - 3min;
    old_envelope_ = old_envelope(old_id, "wamid.OLD1", "Do you have parking?",
                                 contract::format_timestamp(old_at));
    waiting_envelope_ = old_envelope(waiting_id, "wamid.OLD2", "And a late checkout?",
                                     contract::format_timestamp(now - 1min));
    taken_envelope_ = old_envelope(taken_id, "wamid.OLD3", "Is the spa open?",
                                   contract::format_timestamp(now - 2min));
    const auto old_ms = std::to_string(epoch_ms(old_at));
    const std::string record = "conversation:" + conversation;
    cli("HSET " + record + " conversation_id " + conversation +
        " property_id hotel-berlin channel whatsapp guest " + shell_quote(guest) +
        " guest_name Ana refreshed_at " + old_ms);
    cli("EXPIRE " + record + " 2592000");
    cli("LPUSH " + record + ":messages " + shell_quote(old_envelope_));
    cli("EXPIRE " + record + ":messages 2592000");
    cli("ZADD property:hotel-berlin:conversation_index " + old_ms + " " + conversation);
    for (const auto& [id, at] : {std::pair{old_id, old_at}, std::pair{older_id, now - 72h}}) {
      cli("HSET message:" + id + " id " + id +
          " status queued direction inbound property_id hotel-berlin channel whatsapp "
          "conversation_id " +
          conversation + " received_at " + contract::format_timestamp(at));
      cli("EXPIRE message:" + id + " 604800");
    }
    // The previous version's dedup key (scoped by property) and one from before issue 14.
    cli("SET dedup:hotel-berlin:whatsapp:wamid.OLD1 " + old_id + " EX 604800");
    cli("SET dedup:whatsapp:wamid.OLDER " + older_id + " EX 604800");
    // The property's event history up to seq 41.
    for (std::int64_t seq = old_seq - 1; seq <= old_seq; ++seq) {
      const auto event = R"({"seq":)" + std::to_string(seq) +
                         R"(,"property_id":"hotel-berlin","event":"message.created","data":)" +
                         old_envelope_ + R"(,"ts":")" + contract::format_timestamp(old_at) + "\"}";
      cli("XADD property:hotel-berlin:events " + std::to_string(seq) + "-0 event " +
          shell_quote(event));
    }
    cli("SET property:hotel-berlin:seq " + std::to_string(old_seq));
    // An envelope no engine has taken yet, and one an engine took before it stopped for good.
    cli("LPUSH inbound:messages " + shell_quote(waiting_envelope_));
    cli("LPUSH inbound:messages:processing:engine-before-upgrade " + shell_quote(taken_envelope_));
    cli("SADD inbound:messages:consumers engine-before-upgrade");
    // The engine's answer to the old message, queued as engines did (no source, no account).
    old_outbound_ = R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
                    R"(","text":"Yes, parking is free.","conversation_id":")" + conversation +
                    R"(","reply_to":")" + old_id + R"(","priority":5,"idempotency_key":"reply:)" +
                    old_id + "\"}";
    cli("LPUSH outbound:whatsapp " + shell_quote(old_outbound_));
    // A POST /v1/messages/outbound without conversation_id the intake had not taken yet: the
    // element as the previous version normalized it, its record (conversation_id empty) and the
    // digest the intake checks.
    posted_ = R"({"id":")" + posted_id +
              R"(","priority":3,"property_id":"hotel-berlin",)"
              R"("channel":"whatsapp","to":")" +
              guest +
              R"(","text":"Your room is ready.","attachments":[],"conversation_id":null,)"
              R"("reply_to":null,"idempotency_key":null,"created_at":")" +
              contract::format_timestamp(now - 1s) + "\"}";
    cli("HSET message:" + posted_id + " id " + posted_id +
        " status queued direction outbound property_id hotel-berlin channel whatsapp "
        "conversation_id '' created_at " +
        contract::format_timestamp(now - 1s) + " to " + shell_quote(guest) + " digest " +
        contract::sha256_hex(posted_, 16));
    cli("EXPIRE message:" + posted_id + " 604800");
    cli("LPUSH outbound:whatsapp " + shell_quote(posted_));
  }

  std::string cli(const std::string& args) { return redis_.cli(args); }

  http_result post(const std::string& target, const std::string& body, const std::string& bearer) {
    return http_request(
        port_, "POST", target, body,
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + bearer}});
  }

  std::string staff_token() {
    return contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                      std::chrono::system_clock::now(), 1h);
  }

  std::string status_of(const std::string& id) { return cli("HGET message:" + id + " status"); }

  std::vector<std::string> inbound_queue() {
    std::vector<std::string> out;
    std::istringstream lines(cli("LRANGE inbound:messages 0 -1"));
    for (std::string line; std::getline(lines, line);) out.push_back(line);
    return out;
  }

  temp_dir dir_;
  redis_server redis_;
  fake_provider graph_{[](const fake_request&, std::size_t i) {
    return fake_response{200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT)" +
                                  std::to_string(i) + R"("}]})"};
  }};
  fake_provider twilio_{[](const fake_request&, std::size_t i) {
    return fake_response{201, R"({"sid":"SMOUT)" + std::to_string(i) + R"(","status":"queued"})"};
  }};
  fs::path config_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
  std::string old_envelope_, waiting_envelope_, taken_envelope_, old_outbound_, posted_;
};

TEST_F(UpgradeProcess, ConfigAndRedisDataOfThePreviousVersionKeepWorking) {
  // 1. The dashboards' list shows the old conversation, with the defaults of a record that has
  // no state yet.
  auto list = http_request(port_, "GET", "/v1/properties/hotel-berlin/conversations", "",
                           {{"Authorization", "Bearer " + staff_token()}});
  ASSERT_EQ(list.status, 200) << list.body;
  auto listed = parse_json(list.body);
  ASSERT_TRUE(listed.IsObject() && listed["conversations"].IsArray()) << list.body;
  ASSERT_EQ(listed["conversations"].Size(), 1u) << list.body;
  const auto& c = listed["conversations"][0];
  EXPECT_EQ(string_member(c, "conversation_id"), conversation);
  EXPECT_EQ(string_member(c, "mode"), "ai") << list.body;
  EXPECT_EQ(string_member(c, "guest"), guest);
  EXPECT_EQ(string_member(c, "guest_name"), "Ana");
  // Its last message: the guest's, or one of the two replies queued before the upgrade once the
  // intake has filed it (a reply joins its conversation, docs/realtime.md); the guest's is in
  // its history either way.
  EXPECT_FALSE(string_member(c, "last_message_id").empty()) << list.body;
  const auto history = http_request(port_, "GET", "/v1/conversations/" + conversation + "/messages",
                                    "", {{"Authorization", "Bearer " + staff_token()}});
  EXPECT_NE(history.body.find("\"id\":\"" + old_id + "\""), std::string::npos) << history.body;
  ASSERT_TRUE(c.HasMember("unread") && c["unread"].IsInt64()) << list.body;
  EXPECT_EQ(c["unread"].GetInt64(), 0);

  // The web chat site of a section's own keys is the one site: the widget names none.
  ws_client widget;
  ASSERT_EQ(widget.connect(port_, "/v1/webchat"), 101);
  EXPECT_EQ(string_member(parse_json(widget.receive().value_or("{}")), "property_id"),
            "hotel-berlin");

  // 2. What was queued before the upgrade is sent from the configured number: the guest wrote
  // 3 minutes ago (known from the old recent messages), inside the window. The engine's answer
  // names its conversation; the POST's record names none, so the intake names the one it
  // derives.
  ASSERT_TRUE(eventually([&] { return graph_.count() >= 2; }, 15s))
      << status_of(posted_id) << " " << cli("HGET message:" + posted_id + " reason") << "\n"
      << bellhop_.output();
  std::map<std::string, std::string> sent_ids;  // text -> our message id
  const auto requests = graph_.requests();
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(requests[i].target, "/v21.0/1234/messages");
    EXPECT_EQ(requests[i].headers.at("authorization"), "Bearer graph-token");
    auto body = parse_json(requests[i].body);
    EXPECT_EQ(string_member(body, "to"), "4915112345678");
    ASSERT_TRUE(body.HasMember("text")) << requests[i].body;
    sent_ids[string_member(body["text"], "body")] =
        cli("GET outbound:whatsapp:provider:wamid.OUT" + std::to_string(i));
  }
  ASSERT_EQ(sent_ids.size(), 2u);
  const auto old_reply = sent_ids["Yes, parking is free."];
  ASSERT_FALSE(old_reply.empty());
  EXPECT_EQ(sent_ids["Your room is ready."], posted_id);
  for (const auto& id : {old_reply, posted_id}) {
    EXPECT_TRUE(eventually([&] { return status_of(id) == "sent"; }, 10s)) << id;
    EXPECT_EQ(cli("HGET message:" + id + " conversation_id"), conversation) << id;
  }

  // 3. The engine's reply over HTTP to the old conversation goes out too.
  auto r = post("/v1/messages/outbound",
                R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
                    R"(","text":"It is behind the hotel.","priority":3,"conversation_id":")" +
                    conversation + "\"}",
                adapter_key);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string reply_id = string_member(parse_json(r.body), "id");
  ASSERT_TRUE(eventually([&] { return status_of(reply_id) == "sent"; }, 15s))
      << status_of(reply_id) << " " << cli("HGET message:" + reply_id + " reason") << "\n"
      << bellhop_.output();
  ASSERT_EQ(graph_.count(), 3u);
  EXPECT_EQ(graph_.requests()[2].target, "/v21.0/1234/messages");

  // 4. The crashed engine's message is back in the queue, as it was; the waiting one is
  // untouched.
  ASSERT_TRUE(eventually([&] { return inbound_queue().size() == 2; }, 15s)) << bellhop_.output();
  EXPECT_EQ(inbound_queue(), (std::vector<std::string>{waiting_envelope_, taken_envelope_}))
      << "redelivered to the right end (taken next), bytes unchanged";

  // 5. Meta retries messages the previous version took in: duplicates, under either old key.
  for (const auto& id : {"wamid.OLD1", "wamid.OLDER"}) {
    const auto retry = whatsapp_text(id, "Do you have parking?");
    ASSERT_EQ(http_request(port_, "POST", "/v1/webhooks/whatsapp", retry,
                           {{"Content-Type", "application/json"},
                            {"X-Hub-Signature-256", hub_signature(retry, dir_.path())}})
                  .status,
              200);
  }
  // A message after the retries: once it is queued, the retries have been answered.
  const auto fresh = whatsapp_text("wamid.NEW1", "Can I check out at 1 pm?");
  ASSERT_EQ(http_request(port_, "POST", "/v1/webhooks/whatsapp", fresh,
                         {{"Content-Type", "application/json"},
                          {"X-Hub-Signature-256", hub_signature(fresh, dir_.path())}})
                .status,
            200);
  ASSERT_TRUE(eventually([&] { return inbound_queue().size() >= 3; }, 15s)) << bellhop_.output();
  const auto queue = inbound_queue();
  ASSERT_EQ(queue.size(), 3u) << "the retries are not queued again";
  EXPECT_EQ(cli("GET dedup:hotel-berlin:whatsapp:wamid.OLDER"), older_id)
      << "the legacy key's answer is kept under the new key";

  // 6. The guest's new message joins the old conversation and starts its state.
  auto envelope = parse_json(queue[0]);
  EXPECT_EQ(string_member(envelope, "external_id"), "wamid.NEW1");
  EXPECT_EQ(string_member(envelope, "conversation_id"), conversation);
  EXPECT_EQ(string_member(envelope, "conversation_mode"), "ai");
  EXPECT_EQ(string_member(envelope, "account"), "1234");
  const std::string record = "conversation:" + conversation;
  const auto last_inbound = cli("HGET " + record + " last_inbound_at");
  ASSERT_FALSE(last_inbound.empty());
  EXPECT_LE(std::abs(std::stoll(last_inbound) - epoch_ms(std::chrono::system_clock::now())), 10000);
  EXPECT_EQ(cli("HGET " + record + " unread"), "1");
  EXPECT_EQ(cli("HGET " + record + " account"), "1234");
  EXPECT_EQ(cli("HGET " + record + " guest_name"), "Ana");
  EXPECT_EQ(cli("LINDEX " + record + ":messages -1"), old_envelope_) << "the old message stays";
  list = http_request(port_, "GET", "/v1/properties/hotel-berlin/conversations", "",
                      {{"Authorization", "Bearer " + staff_token()}});
  listed = parse_json(list.body);
  ASSERT_TRUE(listed.IsObject() && listed.HasMember("unread") && listed["unread"].IsInt64())
      << list.body;
  EXPECT_EQ(listed["unread"].GetInt64(), 1) << "counted from the first message after the upgrade";

  // 7. Staff take the old conversation over; the engine's next answer is held, not sent.
  auto handoff = post("/v1/conversations/" + conversation + "/handoff",
                      R"({"reason":"guest asks for a late checkout"})", staff_token());
  ASSERT_EQ(handoff.status, 200) << handoff.body;
  auto changed = parse_json(handoff.body);
  ASSERT_TRUE(changed.IsObject() && changed.HasMember("conversation")) << handoff.body;
  EXPECT_EQ(string_member(changed["conversation"], "mode"), "human");
  EXPECT_EQ(cli("HGET " + record + " mode"), "human");
  r = post("/v1/messages/outbound",
           R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
               R"(","text":"Late checkout is 20 euros.","priority":3,"conversation_id":")" +
               conversation + "\"}",
           adapter_key);
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string held_id = string_member(parse_json(r.body), "id");
  ASSERT_TRUE(eventually([&] { return status_of(held_id) == "held"; }, 15s)) << bellhop_.output();
  EXPECT_EQ(cli("HGET message:" + held_id + " reason"), "conversation_with_staff");
  EXPECT_EQ(graph_.count(), 3u);

  // 8. A dashboard that last saw seq 41 before the upgrade gets everything since, from 42, with
  // no gap, ending with the handoff.
  const auto current = std::stoll(cli("GET property:hotel-berlin:seq"));
  ASSERT_GT(current, old_seq);
  ws_client dashboard;
  ASSERT_EQ(dashboard.connect(port_, "/v1/realtime?token=" + staff_token()), 101);
  ASSERT_TRUE(dashboard.receive().has_value());  // welcome
  dashboard.send(R"({"type":"subscribe","property_id":"hotel-berlin","since":)" +
                 std::to_string(old_seq) + "}");
  std::vector<std::int64_t> seqs;
  std::set<std::string> seen;
  std::string frames;
  bool recovered = false;
  while (auto f = dashboard.receive(3s)) {
    frames += *f + "\n";
    auto d = parse_json(*f);
    if (string_member(d, "type") == "subscribed") {
      recovered = d.HasMember("recovered") && d["recovered"].IsBool() && d["recovered"].GetBool();
      continue;
    }
    if (!d.HasMember("seq") || !d["seq"].IsInt64()) continue;
    seqs.push_back(d["seq"].GetInt64());
    if (d.HasMember("data") && string_member(d["data"], "conversation_id") == conversation)
      seen.insert(string_member(d, "event"));
    if (seqs.back() == current) break;
  }
  EXPECT_TRUE(recovered) << frames;
  ASSERT_FALSE(seqs.empty()) << frames;
  EXPECT_EQ(seqs.front(), old_seq + 1) << frames;
  for (std::size_t i = 1; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], seqs[i - 1] + 1) << frames;
  EXPECT_EQ(seqs.back(), current) << frames;
  for (const auto* e : {"message.created", "message.status", "conversation.updated"})
    EXPECT_TRUE(seen.count(e)) << e << " missing:\n" << frames;
}

}  // namespace
}  // namespace bellhop::test
