// GET /v1/properties/{id}/conversations and GET /v1/conversations/{id}/messages end to end:
// a real bellhop process and redis-server, state written by real POST /v1/messages/inbound.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <thread>

#include "bellhop/contract/staff_token.hpp"
#include "support/bellhop_config.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

const std::string adapter_key = "conversations-test-adapter-key-0123456789";
const std::string jwt_secret = "conversations-test-jwt-secret-0123456789abcdef";
constexpr int recent_messages = 3;

rapidjson::Document parse(const std::string& text) { return parse_json(text); }
std::string str(const rapidjson::Value& v, const char* name) { return string_member(v, name); }

std::string token(std::vector<std::string> properties, std::chrono::seconds ttl = 1h,
                  const std::string& secret = jwt_secret,
                  sys_clock::time_point now = sys_clock::now()) {
  return contract::mint_staff_token(secret, "alice", properties, now, ttl);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(sys_clock::now().time_since_epoch())
      .count();
}

std::string header(const http_result& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

// The error body's code and field, for compact expectations.
std::string code_and_field(const http_result& r) {
  auto d = parse(r.body);
  if (!d.IsObject() || !d.HasMember("error")) return "(not an error body: " + r.body + ")";
  return str(d["error"], "code") + "/" + str(d["error"], "field");
}

class ConversationsProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{" << bellhop_config_head(port_, dir_.path() / "data", redis_.url())
                          << R"(
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]}],
               "jwt_secret": ")"
                          << jwt_secret << R"("},
      "realtime": {"recent_messages": )"
                          << recent_messages << R"(}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  struct posted {
    std::string id;
    std::string conversation_id;
  };

  // A guest message; returns the 202 answer's ids.
  posted post(const std::string& property, const std::string& from, const std::string& text,
              const std::string& guest_name = "") {
    const auto r = http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":"ext-)" +
            std::to_string(++posted_) + R"(","from":")" + from + R"(","text":")" + text + "\"" +
            (guest_name.empty() ? "" : R"(,"guest_name":")" + guest_name + "\"") + "}",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 202) << r.body;
    auto d = parse(r.body);
    return {str(d, "id"), str(d, "conversation_id")};
  }

  http_result get(const std::string& target, const std::string& bearer) {
    std::map<std::string, std::string> headers;
    if (!bearer.empty()) headers["Authorization"] = "Bearer " + bearer;
    return http_request(port_, "GET", target, "", headers);
  }

  // GET that must answer 200; returns the parsed body.
  rapidjson::Document get_ok(const std::string& target, const std::string& bearer) {
    const auto r = get(target, bearer);
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
    EXPECT_EQ(header(r, "content-type"), "application/json");
    return parse(r.body);
  }

  // The conversation ids of a list answer, in order.
  static std::vector<std::string> ids(const rapidjson::Document& d) {
    std::vector<std::string> out;
    if (!d.IsObject() || !d.HasMember("conversations") || !d["conversations"].IsArray()) {
      ADD_FAILURE() << "no conversations array";
      return out;
    }
    for (const auto& c : d["conversations"].GetArray()) out.push_back(str(c, "conversation_id"));
    return out;
  }

  // The texts of a messages answer, in order.
  static std::vector<std::string> texts(const rapidjson::Document& d) {
    std::vector<std::string> out;
    if (!d.IsObject() || !d.HasMember("messages") || !d["messages"].IsArray()) {
      ADD_FAILURE() << "no messages array";
      return out;
    }
    for (const auto& m : d["messages"].GetArray()) out.push_back(str(m, "text"));
    return out;
  }

  // Scores are milliseconds: keep activities of different conversations apart.
  static void next_millisecond() { std::this_thread::sleep_for(3ms); }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
  int posted_ = 0;
};

TEST_F(ConversationsProcess, ListsConversationsByLastActivityNewestFirst) {
  const auto a1 = post("hotel-berlin", "+4915100001", "breakfast?", "Ana");
  next_millisecond();
  const auto b = post("hotel-berlin", "+4915100002", "late checkout?");
  next_millisecond();
  const auto a2 = post("hotel-berlin", "+4915100001", "and towels", "Ana");
  post("hotel-paris", "+3360000001", "bonjour");  // another property: never listed
  ASSERT_EQ(a1.conversation_id, a2.conversation_id);

  const auto d = get_ok("/v1/properties/hotel-berlin/conversations", token({"hotel-berlin"}));
  EXPECT_EQ(str(d, "property_id"), "hotel-berlin");
  ASSERT_EQ(ids(d), (std::vector<std::string>{a1.conversation_id, b.conversation_id}));
  const auto& a = d["conversations"][0];
  EXPECT_EQ(str(a, "channel"), "whatsapp");
  EXPECT_EQ(str(a, "guest"), "+4915100001");
  EXPECT_EQ(str(a, "guest_name"), "Ana");
  EXPECT_EQ(str(a, "last_message_id"), a2.id);
  EXPECT_EQ(str(a, "last_message_at").size(), 24u) << "RFC 3339 with ms";
  ASSERT_TRUE(a["last_activity_ms"].IsInt64());
  const auto& second = d["conversations"][1];
  EXPECT_EQ(str(second, "last_message_id"), b.id);
  EXPECT_TRUE(second["guest_name"].IsNull()) << "no name given";
  EXPECT_GT(a["last_activity_ms"].GetInt64(), second["last_activity_ms"].GetInt64());
  EXPECT_NEAR(static_cast<double>(a["last_activity_ms"].GetInt64()), static_cast<double>(now_ms()),
              60000.0);
  EXPECT_TRUE(d["next_before"].IsNull()) << "everything fit on one page";

  // A "*" token sees it too; a property without conversations is an empty list.
  EXPECT_EQ(ids(get_ok("/v1/properties/hotel-berlin/conversations", token({"*"}))).size(), 2u);
  const auto empty = get_ok("/v1/properties/hotel-rome/conversations", token({"*"}));
  EXPECT_TRUE(ids(empty).empty());
  EXPECT_TRUE(empty["next_before"].IsNull());
}

TEST_F(ConversationsProcess, PagesWithBeforeAndLimit) {
  std::vector<std::string> c;  // oldest activity first
  for (int i = 0; i < 5; ++i) {
    c.push_back(post("hotel-berlin", "+49151000" + std::to_string(i), "hi").conversation_id);
    next_millisecond();
  }
  const std::string index = "property:hotel-berlin:conversation_index";
  // An entry older than the records' TTL (30 days) and one whose record is gone: neither is
  // listed, both leave the index.
  const std::string stale = "c_" + std::string(32, 'a'), ghost = "c_" + std::string(32, 'b');
  redis_.cli("ZADD " + index + " " + std::to_string(now_ms() - 31LL * 86400 * 1000) + " " + stale);
  redis_.cli("ZADD " + index + " " + std::to_string(now_ms() - 1) + " " + ghost);

  const auto staff = token({"hotel-berlin"});
  const std::string base = "/v1/properties/hotel-berlin/conversations?limit=2";
  const auto page1 = get_ok(base, staff);
  ASSERT_EQ(ids(page1), (std::vector<std::string>{c[4], c[3]}));
  ASSERT_TRUE(page1["next_before"].IsInt64()) << "more pages follow";
  EXPECT_EQ(page1["next_before"].GetInt64(),
            page1["conversations"][1]["last_activity_ms"].GetInt64());
  EXPECT_EQ(redis_.cli("ZSCORE " + index + " " + stale), "");
  EXPECT_EQ(redis_.cli("ZSCORE " + index + " " + ghost), "");

  const auto page2 =
      get_ok(base + "&before=" + std::to_string(page1["next_before"].GetInt64()), staff);
  ASSERT_EQ(ids(page2), (std::vector<std::string>{c[2], c[1]}));
  ASSERT_TRUE(page2["next_before"].IsInt64());
  const auto page3 =
      get_ok(base + "&before=" + std::to_string(page2["next_before"].GetInt64()), staff);
  ASSERT_EQ(ids(page3), (std::vector<std::string>{c[0]}));
  EXPECT_TRUE(page3["next_before"].IsNull()) << "the last page";

  // Conversations active in the same millisecond stay on one page even past the limit:
  // `before` is exclusive, so ones cut off would never be listed.
  const auto tie = redis_.cli("ZSCORE " + index + " " + c[2]);
  redis_.cli("ZADD " + index + " " + tie + " " + c[3] + " " + tie + " " + c[1]);
  const auto tied = get_ok(base, staff);
  auto got = ids(tied);
  ASSERT_EQ(got.size(), 4u) << tied["conversations"].Size();
  EXPECT_EQ(got[0], c[4]);
  std::sort(got.begin() + 1, got.end());
  std::vector<std::string> expected{c[1], c[2], c[3]};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(std::vector<std::string>(got.begin() + 1, got.end()), expected);
  ASSERT_TRUE(tied["next_before"].IsInt64());
  EXPECT_EQ(ids(get_ok(base + "&before=" + std::to_string(tied["next_before"].GetInt64()), staff)),
            (std::vector<std::string>{c[0]}));
}

TEST_F(ConversationsProcess, RecentMessagesAreCappedAndOldestFirst) {
  posted last;
  for (int i = 1; i <= 5; ++i) last = post("hotel-berlin", "+4915100009", "m" + std::to_string(i));
  const std::string target = "/v1/conversations/" + last.conversation_id + "/messages";
  const auto staff = token({"hotel-berlin"});

  const auto d = get_ok(target, staff);
  EXPECT_EQ(str(d, "conversation_id"), last.conversation_id);
  EXPECT_EQ(str(d, "property_id"), "hotel-berlin");
  EXPECT_EQ(texts(d), (std::vector<std::string>{"m3", "m4", "m5"})) << "realtime.recent_messages";
  const auto& newest = d["messages"][recent_messages - 1];
  EXPECT_EQ(str(newest, "id"), last.id);
  EXPECT_EQ(str(newest, "direction"), "inbound");
  EXPECT_EQ(str(newest, "conversation_id"), last.conversation_id);

  EXPECT_EQ(texts(get_ok(target + "?limit=2", staff)), (std::vector<std::string>{"m4", "m5"}));

  // What is not one JSON object is left out (the list is open to anyone with Redis access).
  const std::string list = "conversation:" + last.conversation_id + ":messages";
  redis_.cli("LPUSH " + list + " 'not json' '[1]' '{\"text\":\"x\"} trailing' '{\"text\":'");
  EXPECT_EQ(texts(get_ok(target, staff)), (std::vector<std::string>{"m3", "m4", "m5"}));
}

// Each outbound message comes with its delivery status from its record (message:<id>), as the
// console's history shows it; a record that is missing or not short printable text adds nothing.
TEST_F(ConversationsProcess, OutboundMessagesCarryTheirDeliveryStatus) {
  const auto guest = post("hotel-berlin", "+4915100010", "hello");
  const std::string target = "/v1/conversations/" + guest.conversation_id + "/messages";
  const std::string list = "conversation:" + guest.conversation_id + ":messages";
  const auto staff = token({"hotel-berlin"});
  auto reply = [&](const std::string& id, const std::string& text) {
    redis_.cli("LPUSH " + list + " '{\"id\":\"" + id + "\",\"direction\":\"outbound\",\"text\":\"" +
               text + "\"}'");
  };
  reply("01OUTDELIVERED", "delivered one");
  redis_.cli("HSET message:01OUTDELIVERED status delivered");
  reply("01OUTFAILED", "failed one");
  redis_.cli("HSET message:01OUTFAILED status failed reason provider_rejected");

  const auto d = get_ok(target, staff);
  ASSERT_TRUE(d.HasMember("messages") && d["messages"].IsArray() && d["messages"].Size() == 3);
  const auto& m = d["messages"];
  EXPECT_FALSE(m[0].HasMember("delivery")) << "a guest message has no delivery status";
  ASSERT_TRUE(m[1].HasMember("delivery") && m[1]["delivery"].IsObject());
  EXPECT_EQ(str(m[1]["delivery"], "status"), "delivered");
  EXPECT_TRUE(m[1]["delivery"]["reason"].IsNull());
  EXPECT_EQ(str(m[1], "text"), "delivered one") << "the message itself is unchanged";
  ASSERT_TRUE(m[2].HasMember("delivery"));
  EXPECT_EQ(str(m[2]["delivery"], "status"), "failed");
  EXPECT_EQ(str(m[2]["delivery"], "reason"), "provider_rejected");

  // Records that add nothing: none, a status that is not printable text, one over 32 bytes.
  reply("01OUTNORECORD", "no record");
  reply("01OUTHOSTILE", "hostile");
  const auto hostile = dir_.path() / "hostile-status";
  std::ofstream(hostile, std::ios::binary) << "sent\x01";
  redis_.cli("-x HSET message:01OUTHOSTILE status < '" + hostile.string() + "'");
  reply("01OUTLONG", "long");
  redis_.cli("HSET message:01OUTLONG status " + std::string(40, 's'));
  const auto e = get_ok(target, staff);
  ASSERT_TRUE(e.HasMember("messages") && e["messages"].IsArray() && e["messages"].Size() == 3);
  for (const auto& n : e["messages"].GetArray())
    EXPECT_FALSE(n.HasMember("delivery")) << str(n, "text");
  EXPECT_EQ(texts(e), (std::vector<std::string>{"no record", "hostile", "long"}));
}

// A conversation lives realtime.conversation_ttl_s (30 days) after its last message. Its
// record and list are renewed at most once per 1/30 of that (a day), not on every message.
TEST_F(ConversationsProcess, LifetimeIsRenewedAtMostOncePerThirtiethAndNamesFollowTheGuest) {
  const auto first = post("hotel-berlin", "+4915100077", "m1");
  const std::string record = "conversation:" + first.conversation_id;
  const std::string list = record + ":messages";
  auto ttl = [&](const std::string& key) { return std::stoll(redis_.cli("TTL " + key)); };
  EXPECT_GE(ttl(record), 2591990);
  EXPECT_GE(ttl(list), 2591990);
  EXPECT_NEAR(static_cast<double>(std::stoll(redis_.cli("HGET " + record + " refreshed_at"))),
              static_cast<double>(now_ms()), 60'000.0);
  EXPECT_EQ(redis_.cli("HGET " + record + " guest"), "+4915100077");

  redis_.cli("EXPIRE " + record + " 1000");
  redis_.cli("EXPIRE " + list + " 1000");
  post("hotel-berlin", "+4915100077", "m2", "Ana");
  EXPECT_LE(ttl(record), 1000) << "renewed less than a day ago: left alone";
  EXPECT_LE(ttl(list), 1000);
  EXPECT_EQ(redis_.cli("HGET " + record + " guest_name"), "Ana");

  redis_.cli("HSET " + record + " refreshed_at " + std::to_string(now_ms() - 2 * 86'400'000));
  const auto third = post("hotel-berlin", "+4915100077", "m3");
  EXPECT_GE(ttl(record), 2591990) << "renewed two days ago: due";
  EXPECT_GE(ttl(list), 2591990);
  EXPECT_EQ(redis_.cli("HGET " + record + " guest_name"), "Ana") << "no name given: kept";
  post("hotel-berlin", "+4915100077", "m4", "Ana Lima");
  EXPECT_EQ(redis_.cli("HGET " + record + " guest_name"), "Ana Lima");

  // The last message and activity come from the list's head and the index.
  const auto d = get_ok("/v1/properties/hotel-berlin/conversations", token({"hotel-berlin"}));
  ASSERT_EQ(ids(d), std::vector<std::string>{first.conversation_id});
  const auto& c = d["conversations"][0];
  const auto newest = parse(redis_.cli("LINDEX " + list + " 0"));
  EXPECT_EQ(str(c, "last_message_id"), str(newest, "id"));
  EXPECT_EQ(str(c, "last_message_at"), str(newest, "received_at"));
  EXPECT_EQ(str(c, "guest_name"), "Ana Lima");
  EXPECT_NE(str(c, "last_message_id"), third.id);
}

TEST_F(ConversationsProcess, RefusesMissingBadExpiredAndForeignTokens) {
  const auto berlin = post("hotel-berlin", "+4915100003", "hello");
  const std::string list = "/v1/properties/hotel-berlin/conversations";
  const std::string messages = "/v1/conversations/" + berlin.conversation_id + "/messages";

  struct refusal {
    std::string what, target, bearer, message_part;
  };
  for (const auto& t : std::vector<refusal>{
           {"none", list, "", "missing"},
           {"none", messages, "", "missing"},
           {"bad signature", list, token({"*"}, 1h, "another-secret-0123456789abcdef"),
            "signature"},
           {"bad signature", messages, token({"*"}, 1h, "another-secret-0123456789abcdef"),
            "signature"},
           {"expired", list, token({"*"}, 60s, jwt_secret, sys_clock::now() - 2min), "expired"},
           {"expired", messages, token({"*"}, 60s, jwt_secret, sys_clock::now() - 2min), "expired"},
           {"garbage", list, "not-a-jwt", "malformed"},
       }) {
    const auto r = get(t.target, t.bearer);
    EXPECT_EQ(r.status, 401) << t.what << " " << t.target << ": " << r.body;
    EXPECT_EQ(header(r, "www-authenticate"), "Bearer") << t.what;
    EXPECT_EQ(code_and_field(r), "unauthorized/") << t.what;
    EXPECT_NE(r.body.find(t.message_part), std::string::npos) << t.what << ": " << r.body;
  }
  // Another scheme is no token.
  EXPECT_EQ(http_request(port_, "GET", list, "", {{"Authorization", "Basic YWxpY2U6cHc="}}).status,
            401);

  const auto paris = token({"hotel-paris"});
  const auto forbidden = get(list, paris);
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;
  EXPECT_EQ(code_and_field(forbidden), "forbidden/property_id");

  // Another property's conversation answers exactly like one that does not exist.
  const auto foreign = get(messages, paris);
  const auto unknown = get("/v1/conversations/c_" + std::string(32, '0') + "/messages", paris);
  EXPECT_EQ(foreign.status, 404) << foreign.body;
  EXPECT_EQ(code_and_field(foreign), "not_found/conversation_id");
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  EXPECT_EQ(foreign.body, unknown.body);
  EXPECT_EQ(get("/v1/conversations/c_" + std::string(32, '0') + "/messages", token({"*"})).status,
            404);

  // The right token reads both.
  EXPECT_EQ(texts(get_ok(messages, token({"hotel-paris", "hotel-berlin"}))),
            (std::vector<std::string>{"hello"}));
  EXPECT_EQ(ids(get_ok(list, token({"hotel-berlin"}))),
            (std::vector<std::string>{berlin.conversation_id}));
}

TEST_F(ConversationsProcess, RefusesBadParametersNamingTheField) {
  const auto staff = token({"*"});
  const std::string list = "/v1/properties/hotel-berlin/conversations";
  const std::string messages = "/v1/conversations/c_" + std::string(32, 'f') + "/messages";
  struct bad {
    std::string target;
    int status;
    std::string code_field;
  };
  for (const auto& t : std::vector<bad>{
           {list + "?limit=0", 422, "out_of_range/limit"},
           {list + "?limit=201", 422, "out_of_range/limit"},
           {list + "?limit=-1", 422, "out_of_range/limit"},
           {list + "?limit=abc", 400, "invalid_parameter/limit"},
           {list + "?limit=", 400, "invalid_parameter/limit"},
           {list + "?limit=1.5", 400, "invalid_parameter/limit"},
           {list + "?limit=5&limit=6", 400, "invalid_parameter/limit"},
           {list + "?before=0", 422, "out_of_range/before"},
           {list + "?before=99999999999999999999999", 422, "out_of_range/before"},
           {list + "?limit=5&before=12x", 400, "invalid_parameter/before"},
           {list + "?lmit=5", 400, "unknown_parameter/lmit"},
           {"/v1/properties/hotel%20berlin/conversations", 422, "invalid_id/property_id"},
           {"/v1/properties/" + std::string(65, 'h') + "/conversations", 422,
            "invalid_id/property_id"},
           {messages + "?before=1", 400, "unknown_parameter/before"},
           {messages + "?limit=500", 422, "out_of_range/limit"},
           {"/v1/conversations/c_ABC/messages", 422, "invalid_id/conversation_id"},
           {"/v1/conversations/c_" + std::string(32, 'F') + "/messages", 422,
            "invalid_id/conversation_id"},
       }) {
    const auto r = get(t.target, staff);
    EXPECT_EQ(r.status, t.status) << t.target << ": " << r.body;
    EXPECT_EQ(code_and_field(r), t.code_field) << t.target;
  }
  // The bounds themselves are fine.
  get_ok(list + "?limit=1", staff);
  get_ok(list + "?limit=200&before=9007199254740992", staff);
  EXPECT_EQ(get(messages + "?limit=200", staff).status, 404) << "valid, just unknown";
}

TEST_F(ConversationsProcess, RedisDownIs503WithRetryAfter) {
  const auto c = post("hotel-berlin", "+4915100004", "hello");
  redis_.stop();
  const auto staff = token({"*"});
  for (const auto& target : {std::string("/v1/properties/hotel-berlin/conversations"),
                             "/v1/conversations/" + c.conversation_id + "/messages"}) {
    const auto r = get(target, staff);
    EXPECT_EQ(r.status, 503) << target << ": " << r.body;
    EXPECT_EQ(header(r, "retry-after"), "1") << target;
    EXPECT_EQ(code_and_field(r), "unavailable/") << target;
  }
  const auto metrics = http_get(port_, "/metrics").body;
  EXPECT_NE(metrics.find("bellhop_conversations_api_requests_total{endpoint=\"conversations\","
                         "result=\"unavailable\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_TRUE(bellhop_.running());
}

}  // namespace
}  // namespace bellhop::test
