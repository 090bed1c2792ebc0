// AI-to-staff handoff end to end (docs/properties.md, "Conversation state"): a real bellhop and
// redis-server, the demo AI engine (examples/demo-engine), a staff dashboard on /v1/realtime and
// the Graph API played by fake_provider. The engine hands off a question it cannot answer; the
// dashboard sees conversation.updated; the engine's later answer is held, not sent; the staff
// reply is sent; released, the engine answers again. Plus the routes' and frames' refusals.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/faq.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/ws_client.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path examples_dir = BELLHOP_EXAMPLES_DIR;
const fs::path faq = examples_dir / "demo-engine" / "faq.json";
const std::string jwt_secret = "handoff-e2e-jwt-secret-0123456789abcdef";
const std::string adapter_key = "handoff-test-key-0123456789";
const std::string guest = "+4915112345678";
const std::string conversation = contract::make_conversation_id("hotel-berlin", "whatsapp", guest);

std::string staff_token(const std::string& sub, std::vector<std::string> properties) {
  return contract::mint_staff_token(jwt_secret, sub, std::move(properties),
                                    std::chrono::system_clock::now(), 1h);
}

class HandoffEndToEnd : public ::testing::Test {
 protected:
  void start_bellhop(const std::string& graph, bool with_engine = true) {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{" << bellhop_config_head(port_, dir_.path() / "data", redis_.url())
                          << R"(
      "auth": {"adapter_keys": [{"name": "engine-berlin", "key": ")"
                          << adapter_key << R"(",
                                  "properties": ["hotel-berlin"]}],
               "jwt_secret": ")"
                          << jwt_secret << R"("},
      "channels": {
        "whatsapp": {"app_secret": "app-secret", "verify_token": "verify",
          "access_token": "graph-token", "phone_number_id": "1234",
          "property_id": "hotel-berlin", "api_base_url": ")"
                          << graph << R"(/v21.0"}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
    if (with_engine) {
      engine_ = child_process({BELLHOP_DEMO_ENGINE_BINARY, "--redis", redis_.url(), "--consumer",
                               "demo-handoff", "--faq", faq.string()},
                              dir_.path() / "engine.log");
    }
  }

  void connect_dashboard(ws_client& ws, const std::string& since = "0") {
    ASSERT_EQ(ws.connect(port_, "/v1/realtime?token=" + staff_token("frontdesk", {"hotel-berlin"})),
              101);
    ASSERT_TRUE(ws.receive().has_value());  // welcome
    ws.send(R"({"type":"subscribe","property_id":"hotel-berlin","since":)" + since + "}");
  }

  // The guest writes (POST /v1/messages/inbound, as an adapter would).
  void guest_writes(const std::string& external_id, const std::string& text) {
    const std::string body = R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
                             R"("external_id":")" +
                             external_id + R"(","from":")" + guest + R"(","text":")" + text + "\"}";
    auto r = http_request(
        port_, "POST", "/v1/messages/inbound", body,
        {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + adapter_key}});
    ASSERT_EQ(r.status, 202) << r.body << bellhop_.output();
  }

  // The first frame `pred` accepts, taken from those read before and not yet taken (an event
  // may arrive before or after the ack of the frame that caused it), then from new ones;
  // parsed, or an empty object after 10 s.
  template <typename Pred>
  rapidjson::Document next_frame(ws_client& ws, Pred pred) {
    auto& backlog = backlog_[&ws];
    for (auto it = backlog.begin(); it != backlog.end(); ++it) {
      auto d = parse_json(*it);
      if (d.IsObject() && pred(d)) {
        backlog.erase(it);
        return d;
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto f = ws.receive(1s);
      if (!f) continue;
      seen_ += *f + "\n";
      auto d = parse_json(*f);
      if (d.IsObject() && pred(d)) return d;
      backlog.push_back(*f);
    }
    ADD_FAILURE() << "no such frame; frames seen:\n" << seen_ << bellhop_.output();
    return parse_json("{}");
  }
  rapidjson::Document event(ws_client& ws, const std::string& name, const std::string& key = "",
                            const std::string& value = "") {
    auto d = next_frame(ws, [&](const rapidjson::Document& f) {
      return string_member(f, "event") == name && f.HasMember("data") &&
             (key.empty() || string_member(f["data"], key.c_str()) == value);
    });
    rapidjson::Document out;
    if (d.HasMember("data")) out.CopyFrom(d, out.GetAllocator());
    return out;
  }
  rapidjson::Document answer(ws_client& ws) {
    return next_frame(ws, [](const rapidjson::Document& f) {
      return string_member(f, "type") == "ack" || string_member(f, "type") == "error";
    });
  }

  http_result post(const std::string& target, const std::string& body, const std::string& bearer) {
    std::map<std::string, std::string> headers = {{"Content-Type", "application/json"}};
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    return http_request(port_, "POST", target, body, headers);
  }

  temp_dir dir_;
  redis_server redis_;
  child_process bellhop_, engine_;
  std::uint16_t port_ = 0;
  std::string seen_;
  std::map<const ws_client*, std::deque<std::string>> backlog_;
};

fake_response graph_ok(std::size_t i) {
  return {200, R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT)" +
                   std::to_string(i) + R"("}]})"};
}

TEST_F(HandoffEndToEnd, EngineHandsOffItsRepliesAreHeldStaffReplyIsSentReleaseLetsItAnswer) {
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  start_bellhop(graph.url());
  ws_client dashboard;
  connect_dashboard(dashboard);

  // 1. A question without a canned answer: the demo engine hands the conversation to staff.
  guest_writes("wamid.IN1", "Can I bring my dog?");
  auto handoff = event(dashboard, "conversation.updated", "change", "handoff");
  ASSERT_TRUE(handoff.HasMember("seq") && handoff["seq"].IsUint64()) << seen_;
  const auto& h = handoff["data"];
  EXPECT_EQ(string_member(h, "conversation_id"), conversation);
  EXPECT_EQ(string_member(h, "mode"), "human");
  EXPECT_EQ(string_member(h, "by"), "engine");
  EXPECT_EQ(string_member(h, "reason"), "no canned answer for this question");
  ASSERT_TRUE(h.HasMember("confidence") && h["confidence"].IsNumber());
  EXPECT_DOUBLE_EQ(h["confidence"].GetDouble(), 0.1);
  EXPECT_EQ(string_member(h, "guest"), guest);
  ASSERT_TRUE(h["unread"].IsInt64());
  EXPECT_EQ(h["unread"].GetInt64(), 1);
  EXPECT_TRUE(h["last_inbound_at"].IsInt64());
  EXPECT_EQ(redis_.cli("HGET conversation:" + conversation + " mode"), "human");
  EXPECT_EQ(graph.count(), 0u) << "a handoff sends nothing to the guest";

  // 2. An FAQ question while staff have it: the engine suggests, Bellhop holds it.
  guest_writes("wamid.IN2", "What time is breakfast?");
  auto created = event(dashboard, "message.created", "text", "What time is breakfast?");
  EXPECT_EQ(string_member(created["data"], "conversation_mode"), "human");
  auto held = event(dashboard, "message.status", "status", "held");
  EXPECT_EQ(string_member(held["data"], "reason"), "conversation_with_staff");
  EXPECT_EQ(string_member(held["data"], "text"), faq_answer(faq, "breakfast"));
  EXPECT_EQ(string_member(held["data"], "conversation_id"), conversation);
  const auto held_id = string_member(held["data"], "id");
  EXPECT_EQ(redis_.cli("HGET message:" + held_id + " status"), "held");
  EXPECT_EQ(redis_.cli("HGET outbound:whatsapp:stats held"), "1");
  EXPECT_NE(redis_.cli("ZSCORE property:hotel-berlin:escalation " + conversation), "")
      << "the guest waits for staff";

  // The conversations list carries the state and the property's unread total.
  const auto token = staff_token("frontdesk", {"hotel-berlin"});
  auto list = http_request(port_, "GET", "/v1/properties/hotel-berlin/conversations", {},
                           {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(list.status, 200) << list.body;
  auto listed = parse_json(list.body);
  ASSERT_TRUE(listed["unread"].IsInt64()) << list.body;
  EXPECT_EQ(listed["unread"].GetInt64(), 2) << list.body;
  ASSERT_EQ(listed["conversations"].Size(), 1u) << list.body;
  const auto& c = listed["conversations"][0];
  EXPECT_EQ(string_member(c, "mode"), "human");
  EXPECT_EQ(string_member(c, "assignee"), "");
  EXPECT_EQ(c["unread"].GetInt64(), 2);
  EXPECT_TRUE(c["last_inbound_at"].IsInt64());
  EXPECT_TRUE(c["read_at"].IsNull());

  // The held suggestion stays on the conversation: an inbox opened now gets it with the history.
  auto messages = http_request(port_, "GET", "/v1/conversations/" + conversation + "/messages", {},
                               {{"Authorization", "Bearer " + token}});
  ASSERT_EQ(messages.status, 200) << messages.body;
  auto history = parse_json(messages.body);
  ASSERT_TRUE(history["held"].IsArray() && history["held"].Size() == 1) << messages.body;
  EXPECT_EQ(string_member(history["held"][0], "id"), held_id);
  EXPECT_EQ(string_member(history["held"][0], "text"), faq_answer(faq, "breakfast"));
  EXPECT_EQ(redis_.cli("PTTL conversation:" + conversation + ":held") != "-1", true)
      << "it lives as long as the conversation";

  // 3. Staff take over, answer (the staff reply is sent) and mark it read.
  dashboard.send(R"({"type":"takeover","property_id":"hotel-berlin","conversation_id":")" +
                 conversation + R"(","client_msg_id":"t1"})");
  auto took = answer(dashboard);
  EXPECT_EQ(string_member(took, "type"), "ack") << seen_;
  EXPECT_EQ(string_member(took, "client_msg_id"), "t1");
  EXPECT_EQ(string_member(took["conversation"], "assignee"), "frontdesk");
  dashboard.send(R"({"type":"reply","property_id":"hotel-berlin","conversation_id":")" +
                 conversation + R"(","client_msg_id":"r1","text":"Dogs are welcome!"})");
  EXPECT_EQ(string_member(answer(dashboard), "type"), "ack") << seen_;
  EXPECT_EQ(redis_.cli("ZSCORE property:hotel-berlin:escalation " + conversation), "")
      << "the guest's wait for staff ends with the staff reply (docs/properties.md, Escalation)";
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 15s)) << bellhop_.output();
  EXPECT_EQ(string_member(parse_json(graph.requests()[0].body)["text"], "body"),
            "Dogs are welcome!");

  dashboard.send(R"({"type":"read","property_id":"hotel-berlin","conversation_id":")" +
                 conversation + "\"}");
  auto read = answer(dashboard);
  EXPECT_EQ(string_member(read, "type"), "ack") << seen_;
  EXPECT_EQ(string_member(read, "for"), "read");
  EXPECT_EQ(read["conversation"]["unread"].GetInt64(), 0);
  auto read_event = event(dashboard, "conversation.updated", "change", "read");
  EXPECT_TRUE(read_event["data"]["read_at"].IsInt64());
  EXPECT_EQ(redis_.cli("HGET property:hotel-berlin:unread " + conversation), "");

  // 4. Released: the engine answers again, and is sent.
  dashboard.send(R"({"type":"release","property_id":"hotel-berlin","conversation_id":")" +
                 conversation + R"(","client_msg_id":"rel1"})");
  EXPECT_EQ(string_member(answer(dashboard), "type"), "ack") << seen_;
  auto released = event(dashboard, "conversation.updated", "change", "release");
  EXPECT_EQ(string_member(released["data"], "mode"), "ai");
  EXPECT_EQ(redis_.cli("EXISTS conversation:" + conversation + ":held"), "0")
      << "handed back: the held suggestions are dropped";
  EXPECT_EQ(string_member(released["data"], "by"), "frontdesk");
  guest_writes("wamid.IN3", "Is there wifi?");
  ASSERT_TRUE(eventually([&] { return graph.count() == 2; }, 15s))
      << bellhop_.output() << engine_.output();
  EXPECT_EQ(string_member(parse_json(graph.requests()[1].body)["text"], "body"),
            faq_answer(faq, "wifi"));
  EXPECT_EQ(graph.count(), 2u) << "the held suggestion was never sent";
  // The engine's answer joins the conversation as a staff reply does: an event, the history.
  auto answered = event(dashboard, "message.created", "text", faq_answer(faq, "wifi"));
  EXPECT_EQ(string_member(answered["data"], "direction"), "outbound");
  EXPECT_EQ(string_member(answered["data"], "source"), "ai");
  EXPECT_EQ(string_member(answered["data"], "conversation_id"), conversation);
  const auto after = http_request(port_, "GET", "/v1/conversations/" + conversation + "/messages",
                                  {}, {{"Authorization", "Bearer " + token}});
  auto recent = parse_json(after.body);
  ASSERT_TRUE(recent["messages"].IsArray() && !recent["messages"].Empty()) << after.body;
  const auto& last = recent["messages"][recent["messages"].Size() - 1];
  EXPECT_EQ(string_member(last, "text"), faq_answer(faq, "wifi")) << after.body;
  EXPECT_EQ(string_member(last, "source"), "ai");
  std::size_t breakfast = 0;
  for (const auto& m : recent["messages"].GetArray())
    if (string_member(m, "text") == faq_answer(faq, "breakfast")) ++breakfast;
  EXPECT_EQ(breakfast, 0u) << "a held suggestion is no message of the conversation";

  // A dashboard that reconnects with `since` gets every conversation.updated it missed.
  ws_client later;
  connect_dashboard(later, std::to_string(handoff["seq"].GetUint64() - 1));
  std::vector<std::string> changes;
  for (int i = 0; i < 4; ++i) {
    auto e = event(later, "conversation.updated");
    changes.push_back(string_member(e["data"], "change"));
  }
  EXPECT_EQ(changes, (std::vector<std::string>{"handoff", "handoff", "read", "release"}));
}

TEST_F(HandoffEndToEnd, RestHandoffReleaseAndReadAnswerTheStateOrRefuse) {
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  start_bellhop(graph.url(), false);
  guest_writes("wamid.IN1", "Hello");
  ASSERT_TRUE(eventually([&] { return redis_.cli("EXISTS conversation:" + conversation) == "1"; }));
  const std::string base = "/v1/conversations/" + conversation;
  const auto staff = staff_token("frontdesk", {"hotel-berlin"});
  const auto other = staff_token("paris-desk", {"hotel-paris"});

  // An engine hands off with its adapter key.
  auto r = post(base + "/handoff", R"({"reason":"guest asks for a refund","confidence":0.35})",
                adapter_key);
  ASSERT_EQ(r.status, 200) << r.body;
  auto state = parse_json(r.body);
  EXPECT_TRUE(state["seq"].IsUint64());
  EXPECT_EQ(string_member(state["conversation"], "mode"), "human");
  EXPECT_EQ(string_member(state["conversation"], "by"), "engine-berlin");
  EXPECT_DOUBLE_EQ(state["conversation"]["confidence"].GetDouble(), 0.35);
  EXPECT_EQ(redis_.cli("HGET conversation:" + conversation + " mode_reason"),
            "guest asks for a refund");

  // An engine reply over HTTP while staff have it: held, never sent.
  auto out = post("/v1/messages/outbound",
                  R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
                      R"(","text":"A refund takes 5 days."})",
                  adapter_key);
  ASSERT_EQ(out.status, 202) << out.body;
  const auto id = string_member(parse_json(out.body), "id");
  ASSERT_TRUE(eventually([&] { return redis_.cli("HGET message:" + id + " status") == "held"; }))
      << bellhop_.output();
  EXPECT_EQ(redis_.cli("HGET message:" + id + " reason"), "conversation_with_staff");

  // Staff mark it read, then release it; then an engine reply is sent.
  r = post(base + "/read", "", staff);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse_json(r.body)["conversation"]["unread"].GetInt64(), 0);
  EXPECT_EQ(redis_.cli("HGET conversation:" + conversation + " unread"), "0");
  r = post(base + "/release", R"({"reason":"refund handled"})", staff);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(string_member(parse_json(r.body)["conversation"], "mode"), "ai");
  out = post("/v1/messages/outbound",
             R"({"property_id":"hotel-berlin","channel":"whatsapp","to":")" + guest +
                 R"(","text":"Anything else?"})",
             adapter_key);
  ASSERT_EQ(out.status, 202) << out.body;
  ASSERT_TRUE(eventually([&] { return graph.count() == 1; }, 15s)) << bellhop_.output();
  EXPECT_EQ(string_member(parse_json(graph.requests()[0].body)["text"], "body"), "Anything else?");

  // Refusals, each in the JSON error shape.
  struct row {
    std::string target, body, bearer;
    int status;
    std::string code;
  };
  const std::string unknown = "/v1/conversations/c_" + std::string(32, '0');
  const std::vector<row> rows = {
      {base + "/handoff", R"({"reason":"x"})", "", 401, "unauthorized"},
      {base + "/handoff", R"({"reason":"x"})", "wrong-key", 401, "unauthorized"},
      {base + "/read", "", adapter_key, 401, "unauthorized"},  // staff only
      {"/v1/conversations/not-an-id/handoff", R"({"reason":"x"})", staff, 422, "invalid_id"},
      {unknown + "/handoff", R"({"reason":"x"})", staff, 404, "not_found"},
      {unknown + "/read", "", staff, 404, "not_found"},
      {base + "/handoff", R"({"reason":"x"})", other, 403, "forbidden"},
      {base + "/release", "", other, 403, "forbidden"},
      {base + "/handoff", "{\"reason\":", staff, 400, "malformed_json"},
      {base + "/handoff", "[1]", staff, 400, "malformed_json"},
      {base + "/handoff", R"({"reason":"x","mood":"bad"})", staff, 400, "unknown_field"},
      {base + "/handoff", R"({"reason":42})", staff, 400, "invalid_field"},
      {base + "/handoff", R"({"reason":"x","confidence":"high"})", staff, 400, "invalid_field"},
      {base + "/handoff", R"({})", staff, 422, "invalid_field"},
      {base + "/handoff", "", staff, 422, "invalid_field"},
      {base + "/handoff", R"({"reason":"x","confidence":1.5})", staff, 422, "out_of_range"},
      {base + "/handoff", R"({"reason":")" + std::string(501, 'x') + "\"}", staff, 422,
       "invalid_field"},
      {base + "/read", R"({"confidence":0.5})", staff, 400, "unknown_field"},
      {base + "/release", R"({"reason":")" + std::string(5000, 'x') + "\"}", staff, 413,
       "payload_too_large"},
  };
  for (const auto& row : rows) {
    auto res = post(row.target, row.body, row.bearer);
    EXPECT_EQ(res.status, row.status) << row.target << " " << row.body << " -> " << res.body;
    EXPECT_EQ(string_member(parse_json(res.body)["error"], "code"), row.code)
        << row.target << " " << row.body << " -> " << res.body;
  }
  // Staff taking over without naming anyone take it themselves.
  r = post(base + "/handoff", R"({"reason":"taking it"})", staff);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(string_member(parse_json(r.body)["conversation"], "assignee"), "frontdesk");

  // Redis gone: 503 with Retry-After, in the error shape.
  redis_.stop();
  r = post(base + "/release", "", staff);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(string_member(parse_json(r.body)["error"], "code"), "unavailable") << r.body;
}

TEST_F(HandoffEndToEnd, WebSocketFramesAreRefusedWithAnErrorFrame) {
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  start_bellhop(graph.url(), false);
  guest_writes("wamid.IN1", "Hello");
  ASSERT_TRUE(eventually([&] { return redis_.cli("EXISTS conversation:" + conversation) == "1"; }));
  ws_client ws;
  connect_dashboard(ws);
  struct row {
    std::string frame, code;
  };
  const std::string unknown = "c_" + std::string(32, '0');
  const std::vector<row> rows = {
      {R"({"type":"takeover","property_id":"hotel-berlin"})", "invalid_field"},
      {R"({"type":"release","property_id":"hotel-berlin","conversation_id":"nope"})",
       "invalid_field"},
      {R"({"type":"read","property_id":"hotel-paris","conversation_id":")" + conversation + "\"}",
       "forbidden"},
      {R"({"type":"read","property_id":"bad id!","conversation_id":")" + conversation + "\"}",
       "invalid_field"},
      {R"({"type":"takeover","property_id":"hotel-berlin","conversation_id":")" + unknown + "\"}",
       "not_found"},
      {R"({"type":"takeover","property_id":"hotel-berlin","conversation_id":")" + conversation +
           R"(","client_msg_id":"\u0001"})",
       "invalid_field"},
  };
  for (const auto& row : rows) {
    ws.send(row.frame);
    auto a = answer(ws);
    EXPECT_EQ(string_member(a, "type"), "error") << row.frame;
    EXPECT_EQ(string_member(a, "code"), row.code) << row.frame << " -> " << seen_;
  }
  EXPECT_EQ(redis_.cli("HGET conversation:" + conversation + " mode"), "")
      << "no refused frame changed the conversation";
}

}  // namespace
}  // namespace bellhop::test
