// The admin API (docs/console.md, "Admin API") end to end: real bellhop and redis-server
// processes, the WhatsApp Graph API played by a local fake provider. The overview's figures are
// checked against a state the test builds in Redis and through Bellhop's own routes.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "support/bellhop_config.hpp"
#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/signatures.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "admin-test-key-0123456789";
const std::string admin_token = "admin-token-0123456789";
const std::string app_secret = "app-secret";
const std::map<std::string, std::string> admin = {{"Authorization", "Bearer " + admin_token}};

fake_response graph_ok(std::size_t index) {
  return {200, R"({"messaging_product":"whatsapp","contacts":[{"input":"x","wa_id":"x"}],)"
               R"("messages":[{"id":"wamid.)" +
                   std::to_string(index) + R"("}]})"};
}

std::string whatsapp_text(const std::string& id, const std::string& text) {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930000000","phone_number_id":"1234"},"contacts":[{"profile":{"name":"Ana"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":")" +
         id + R"(","timestamp":"1795860000","type":"text","text":{"body":")" + text +
         R"("}}]}}]}]})";
}

rapidjson::Document json(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str(), s.size());
  return d;
}

class AdminApi : public ::testing::Test {
 protected:
  // The reaper runs once an hour: the test's engines and their lists stay as it made them.
  child_process start_bellhop(const redis_server& redis, const fake_provider& graph) {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{"
                          << bellhop_config_head(port_, dir_.path() / "data", redis.url(),
                                                 local_url(port_))
                          << R"(
      "inbound": {"reaper_interval_ms": 3600000},
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400, "max_attempts": 1},
      "auth": {"adapter_keys": [{"name": "all", "key": ")"
                          << adapter_key << R"(", "properties": ["*"]}],
               "admin_token": ")"
                          << admin_token << R"(", "jwt_secret": "jwt-secret-0123456789-0123456789"},
      "channels": {"whatsapp": {"app_secret": ")"
                          << app_secret << R"(", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "service_window_s": 0, "api_base_url": ")"
                          << graph.url() << R"(/v21.0"}}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  http_result post_inbound(const std::string& external_id) {
    return http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":")" + external_id +
            R"(","from":"+4915112345678","text":"hello"})",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
  }

  http_result post_outbound(const std::string& text) {
    return http_request(
        port_, "POST", "/v1/messages/outbound",
        R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
        R"("to":"+4915112345678","text":")" +
            text + "\"}",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
  }

  http_result webhook(const std::string& body, const std::string& signature) {
    return http_request(port_, "POST", "/v1/webhooks/whatsapp", body,
                        {{"Content-Type", "application/json"}, {"X-Hub-Signature-256", signature}});
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(AdminApi, TheOverviewCountsWhatIsInRedis) {
  redis_server redis;
  std::atomic<bool> reject{false};
  fake_provider graph([&](const fake_request&, std::size_t i) {
    return reject ? fake_response{400, R"({"error":{"message":"nope","code":100}})"} : graph_ok(i);
  });
  auto bellhop = start_bellhop(redis, graph);

  // Three guest messages through the API and one through a signed webhook; one refused webhook.
  for (int i = 0; i < 3; ++i) ASSERT_EQ(post_inbound("ext-" + std::to_string(i)).status, 202);
  const auto body = whatsapp_text("wamid.IN1", "Breakfast?");
  ASSERT_EQ(webhook(body, hmac_sha256(app_secret, body, dir_.path())).status, 200)
      << bellhop.output();
  ASSERT_EQ(webhook(body, "sha256=00").status, 401);
  // One reply sent through the fake provider; one refused by it (dead: max_attempts 1).
  ASSERT_EQ(post_outbound("Breakfast is 7-10.").status, 202);
  ASSERT_TRUE(eventually([&] { return redis.cli("HGET outbound:whatsapp:stats sent") == "1"; }))
      << bellhop.output();
  reject = true;
  ASSERT_EQ(post_outbound("refused").status, 202);
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "1"; }))
      << bellhop.output();
  ASSERT_EQ(http_request(port_, "POST", "/v1/admin/queues/whatsapp/pause", "", admin).status, 200);

  // An engine with a heartbeat (25 of its 30 s left) and two messages in flight; one without.
  redis.cli("SADD inbound:messages:consumers engine-a engine-b");
  redis.cli("SET inbound:messages:heartbeat:engine-a 1 PX 25000");
  redis.cli("LPUSH inbound:messages:processing:engine-a one two");
  redis.cli("LPUSH inbound:messages:dead '{\"id\":\"m1\"}' 'not json'");
  redis.cli("LPUSH inbound:unrouted '{}'");

  const auto r = http_request(port_, "GET", "/v1/admin/overview", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto d = json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_GT(d["generated_at"].GetInt64(), 1700000000000);

  const auto& in = d["inbound"];
  EXPECT_EQ(in["waiting"].GetInt(), 4) << r.body;
  EXPECT_EQ(in["dead"].GetInt(), 2);
  EXPECT_EQ(in["unrouted"].GetInt(), 1);
  ASSERT_EQ(in["engines"].Size(), 2u) << r.body;
  const auto& a = in["engines"][0];
  EXPECT_STREQ(a["consumer"].GetString(), "engine-a");
  EXPECT_EQ(a["in_flight"].GetInt(), 2);
  EXPECT_TRUE(a["alive"].GetBool());
  EXPECT_GE(a["heartbeat_age_ms"].GetInt64(), 5000 - 100);
  EXPECT_LT(a["heartbeat_age_ms"].GetInt64(), 15000);
  const auto& b = in["engines"][1];
  EXPECT_STREQ(b["consumer"].GetString(), "engine-b");
  EXPECT_EQ(b["in_flight"].GetInt(), 0);
  EXPECT_FALSE(b["alive"].GetBool());
  EXPECT_TRUE(b["heartbeat_age_ms"].IsNull());

  ASSERT_EQ(d["outbound"].Size(), 1u);
  const auto& q = d["outbound"][0];
  EXPECT_STREQ(q["channel"].GetString(), "whatsapp");
  EXPECT_TRUE(q["paused"].GetBool());
  EXPECT_EQ(q["dead"].GetInt(), 1);
  EXPECT_EQ(q["counters"]["sent"].GetInt(), 1);

  ASSERT_EQ(d["accounts"].Size(), 1u) << r.body;
  const auto& acc = d["accounts"][0];
  EXPECT_STREQ(acc["channel"].GetString(), "whatsapp");
  EXPECT_STREQ(acc["account"].GetString(), "1234");
  EXPECT_STREQ(acc["property_id"].GetString(), "hotel-berlin");
  EXPECT_TRUE(acc["webhook"]["ok_at"].IsInt64()) << r.body;
  EXPECT_TRUE(acc["webhook"]["error_at"].IsInt64()) << r.body;
  EXPECT_NE(std::string(acc["webhook"]["error"].GetString()).find("401"), std::string::npos);
  EXPECT_TRUE(acc["send"]["ok_at"].IsInt64()) << r.body;
  EXPECT_TRUE(acc["send"]["error_at"].IsInt64()) << r.body;
  EXPECT_TRUE(acc["send"]["error"].IsString()) << r.body;

  bool business_number = false;
  for (const auto& p : d["rate_limits"].GetArray()) {
    if (std::string(p["name"].GetString()) != "whatsapp_business_number") continue;
    business_number = true;
    EXPECT_GT(p["limit"].GetInt64(), 0);
    EXPECT_TRUE(p["window_s"].IsNumber());
  }
  EXPECT_TRUE(business_number) << r.body;

  const auto& rd = d["redis"];
  EXPECT_FALSE(rd["embedded"].GetBool());
  EXPECT_GT(rd["used_memory"].GetInt64(), 0);
  EXPECT_EQ(rd["restarts"].GetInt(), 0);
  EXPECT_TRUE(rd["aof_enabled"].IsBool());
  EXPECT_TRUE(rd["uptime_s"].IsInt64());
  EXPECT_TRUE(rd["rdb_last_bgsave_status"].IsString());

  // 60 minutes, oldest first; the four guest messages in and the one reply out (the test may
  // span a minute's end: the sums).
  const auto& t = d["throughput"];
  ASSERT_EQ(t.Size(), 60u);
  std::int64_t in_total = 0, out_total = 0;
  for (rapidjson::SizeType i = 0; i < t.Size(); ++i) {
    if (i > 0) {
      EXPECT_EQ(t[i]["minute"].GetInt64() - t[i - 1]["minute"].GetInt64(), 60000);
    }
    in_total += t[i]["in"].GetInt64();
    out_total += t[i]["out"].GetInt64();
  }
  EXPECT_EQ(in_total, 4) << r.body;
  EXPECT_EQ(out_total, 1) << r.body;
  EXPECT_LE(t[59]["minute"].GetInt64(), d["generated_at"].GetInt64());
  EXPECT_GT(t[59]["minute"].GetInt64() + 60000, d["generated_at"].GetInt64());
  // The per-minute hash expires (2 h).
  const auto minute = std::to_string(t[59]["minute"].GetInt64() / 60000);
  const auto ttl = std::stoi(redis.cli("TTL stats:minute:" + minute));
  EXPECT_GT(ttl, 7000);
  EXPECT_LE(ttl, 7200);
}

TEST_F(AdminApi, DeadLettersAreListedNewestFirstWithTheirMessage) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t) {
    return fake_response{400, R"({"error":{"message":"nope","code":100}})"};
  });
  auto bellhop = start_bellhop(redis, graph);
  const auto sent = post_outbound("refused");
  ASSERT_EQ(sent.status, 202);
  const std::string id = json(sent.body)["id"].GetString();
  ASSERT_TRUE(eventually([&] { return redis.cli("LLEN outbound:whatsapp:dead") == "1"; }))
      << bellhop.output();
  // What else a dead list may hold: a letter quoting a message that was not JSON, and an
  // element that is not JSON at all (with a byte that is not UTF-8).
  redis.cli(
      R"(LPUSH outbound:whatsapp:dead '{"message":"{broken","reason":"unreadable message: syntax","error_code":null,"attempts":1,"failed_at":"2026-01-01T00:00:00Z"}')");
  redis.cli("LPUSH outbound:whatsapp:dead \"$(printf 'garbage\\377')\"");

  auto r = http_request(port_, "GET", "/v1/admin/queues/whatsapp/dead", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = json(r.body);
  ASSERT_TRUE(d.IsObject()) << r.body;
  EXPECT_STREQ(d["channel"].GetString(), "whatsapp");
  ASSERT_EQ(d["dead"].Size(), 3u) << r.body;
  const auto& raw = d["dead"][0];  // the newest
  EXPECT_TRUE(raw["message"].IsNull());
  EXPECT_TRUE(raw["id"].IsNull());
  EXPECT_EQ(std::string(raw["element"].GetString()), "garbage\xEF\xBF\xBD");
  const auto& quoted = d["dead"][1];
  EXPECT_TRUE(quoted["message"].IsNull());
  EXPECT_STREQ(quoted["element"].GetString(), "{broken");
  EXPECT_STREQ(quoted["reason"].GetString(), "unreadable message: syntax");
  const auto& real = d["dead"][2];
  EXPECT_STREQ(real["id"].GetString(), id.c_str());
  EXPECT_EQ(real["attempts"].GetInt(), 1);
  EXPECT_NE(std::string(real["reason"].GetString()).find("nope"), std::string::npos) << r.body;
  EXPECT_TRUE(real["failed_at"].IsString());
  ASSERT_TRUE(real["message"].IsObject());
  EXPECT_STREQ(real["message"]["text"].GetString(), "refused");
  EXPECT_FALSE(real.HasMember("element"));

  // limit: the newest N; bounds and bad parameters.
  r = http_request(port_, "GET", "/v1/admin/queues/whatsapp/dead?limit=1", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r.body)["dead"].Size(), 1u);
  for (const char* q : {"limit=0", "limit=201", "limit=99999999999999999999999"})
    EXPECT_EQ(
        http_request(port_, "GET", std::string("/v1/admin/queues/whatsapp/dead?") + q, "", admin)
            .status,
        422)
        << q;
  for (const char* q : {"limit=abc", "limit=", "limit=1&limit=2", "offset=3", "limit=1.5"})
    EXPECT_EQ(
        http_request(port_, "GET", std::string("/v1/admin/queues/whatsapp/dead?") + q, "", admin)
            .status,
        400)
        << q;
  EXPECT_EQ(http_request(port_, "GET", "/v1/admin/queues/fax/dead", "", admin).status, 404);
  EXPECT_EQ(http_get(port_, "/v1/admin/queues/whatsapp/dead").status, 401);

  // The inbound dead list, and all of it back on the queue.
  redis.cli(R"(LPUSH inbound:messages:dead '{"id":"01OLD","text":"first"}' 'not json')");
  r = http_request(port_, "GET", "/v1/admin/inbound/dead?limit=5", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  d = json(r.body);
  ASSERT_EQ(d["dead"].Size(), 2u) << r.body;
  EXPECT_STREQ(d["dead"][0]["element"].GetString(), "not json");
  EXPECT_STREQ(d["dead"][1]["id"].GetString(), "01OLD");
  EXPECT_STREQ(d["dead"][1]["message"]["text"].GetString(), "first");
  EXPECT_EQ(http_request(port_, "GET", "/v1/admin/inbound/dead?limit=201", "", admin).status, 422);
  // An element too large to read whole: its first 8 KiB, cut, with the id it starts with.
  redis.cli(
      R"lua(EVAL "redis.call('LPUSH', KEYS[1], '{\"id\":\"01BIG\",\"text\":\"' .. string.rep('x', 300000) .. '\"}')" 1 inbound:messages:dead)lua");
  r = http_request(port_, "GET", "/v1/admin/inbound/dead?limit=1", "", admin);
  ASSERT_EQ(r.status, 200) << r.body.substr(0, 200);
  EXPECT_LT(r.body.size(), 9000u);
  d = json(r.body);
  ASSERT_EQ(d["dead"].Size(), 1u);
  EXPECT_STREQ(d["dead"][0]["id"].GetString(), "01BIG");
  EXPECT_TRUE(d["dead"][0]["truncated"].GetBool());
  EXPECT_TRUE(d["dead"][0]["message"].IsNull());
  EXPECT_EQ(std::string(d["dead"][0]["element"].GetString()).size(), 8192u);
  redis.cli("LPOP inbound:messages:dead");
  r = http_request(port_, "POST", "/v1/admin/inbound/dead/retry", "", admin);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(json(r.body)["requeued"].GetInt(), 2);
  EXPECT_EQ(redis.cli("LLEN inbound:messages:dead"), "0");
  // Oldest first onto the head: the queue's tail (where engines take) keeps what waited.
  EXPECT_EQ(redis.cli("LINDEX inbound:messages 0"), "not json");
  EXPECT_EQ(redis.cli("LINDEX inbound:messages 1"), R"({"id":"01OLD","text":"first"})");
}

TEST_F(AdminApi, EveryAdminRouteWantsTheAdminToken) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  const std::map<std::string, std::string> wrong = {
      {"Authorization", "Bearer admin-token-012345678X"}};
  const std::map<std::string, std::string> cookie_only = {
      {"Cookie", "bellhop_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}};
  struct route {
    const char* method;
    const char* target;
  };
  for (const auto& [method, target] :
       {route{"GET", "/v1/admin/overview"}, route{"GET", "/v1/admin/queues"},
        route{"GET", "/v1/admin/queues/whatsapp/dead"}, route{"GET", "/v1/admin/inbound/dead"},
        route{"POST", "/v1/admin/inbound/dead/retry"},
        route{"POST", "/v1/admin/queues/whatsapp/pause"},
        route{"DELETE", "/v1/admin/queues/whatsapp/dead"}}) {
    for (const auto& headers : {std::map<std::string, std::string>{}, wrong, cookie_only}) {
      const auto r = http_request(port_, method, target, "", headers);
      EXPECT_EQ(r.status, 401) << method << " " << target << ": " << r.body;
      EXPECT_EQ(r.headers.count("www-authenticate"), 1u) << target;
      const auto d = json(r.body);
      ASSERT_TRUE(d.IsObject()) << r.body;
      EXPECT_STREQ(d["error"]["code"].GetString(), "unauthorized");
    }
  }
  EXPECT_EQ(redis.cli("EXISTS outbound:whatsapp:paused"), "0");
  // Bad query parameters are answered only to an admin: 401 first.
  EXPECT_EQ(http_get(port_, "/v1/admin/inbound/dead?limit=0").status, 401);
  EXPECT_EQ(http_request(port_, "GET", "/v1/admin/inbound/dead?limit=0", "", admin).status, 422);
  EXPECT_EQ(http_request(port_, "GET", "/v1/admin/overview", "", admin).status, 200);
}

TEST_F(AdminApi, TheEmbeddedRedisShowsItsRestarts) {
  port_ = free_port();
  const auto config = dir_.path() / "config.json";
  std::ofstream(config) << R"({"listen": "127.0.0.1:)" << port_ << R"(", "data_dir": ")"
                        << (dir_.path() / "data").string()
                        << R"(", "redis": {"url": "embedded", "embedded": {"port": )" << free_port()
                        << R"(}}, "auth": {"admin_token": ")" << admin_token << R"("}})";
  child_process bellhop({BELLHOP_BINARY, "serve", "--config", config.string()},
                        dir_.path() / "bellhop.log");
  ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
      << bellhop.output();
  auto redis_of = [&] {
    return json(http_request(port_, "GET", "/v1/admin/overview", "", admin).body);
  };
  auto d = redis_of();
  ASSERT_TRUE(d.IsObject()) << bellhop.output();
  EXPECT_TRUE(d["redis"]["embedded"].GetBool());
  EXPECT_EQ(d["redis"]["restarts"].GetInt(), 0);
  EXPECT_TRUE(d["redis"]["aof_enabled"].GetBool());  // the embedded Redis keeps an AOF
  EXPECT_GT(d["redis"]["maxmemory"].GetInt64(), 0);

  const auto children = children_of(bellhop.pid(), "redis-server");
  ASSERT_EQ(children.size(), 1u);
  ::kill(children[0], SIGKILL);
  ASSERT_TRUE(eventually(
      [&] {
        auto r = redis_of();
        return r.IsObject() && r.HasMember("redis") && r["redis"]["restarts"].GetInt() == 1;
      },
      20s))
      << bellhop.output();
}

// The session cookie's value in a login's Set-Cookie header.
std::string session_cookie_of(const http_result& r) {
  auto it = r.headers.find("set-cookie");
  if (it == r.headers.end()) return "";
  const std::string name = "bellhop_session=";
  if (it->second.rfind(name, 0) != 0) return "";
  return it->second.substr(name.size(), it->second.find(';') - name.size());
}

TEST_F(AdminApi, AnAdminsSessionIsAdmittedAndAStaffSessionIsNot) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  auto add_user = [&](const std::string& name, const std::string& role) {
    const auto out =
        run_capture("printf '%s\\n' 'a long password 1' | " + std::string(BELLHOP_BINARY) +
                        " user add " + name + " --role " + role + " --properties '*' --config " +
                        shell_quote((dir_.path() / "config.json").string()) + " && echo added",
                    true);
    ASSERT_NE(out.find("added"), std::string::npos) << out;
  };
  add_user("olga", "admin");
  add_user("sam", "staff");
  struct session {
    std::string cookie, csrf;
  };
  auto sign_in = [&](const std::string& name) {
    const auto r = http_request(port_, "POST", "/v1/auth/login",
                                R"({"username":")" + name + R"(","password":"a long password 1"})",
                                {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 200) << r.body;
    const auto d = json(r.body);
    return session{session_cookie_of(r),
                   d.IsObject() && d.HasMember("csrf_token") ? d["csrf_token"].GetString() : ""};
  };
  const auto admin_session = sign_in("olga");
  const auto staff_session = sign_in("sam");
  ASSERT_FALSE(admin_session.cookie.empty());
  ASSERT_FALSE(staff_session.cookie.empty());
  auto with = [&](const session& s, const std::string& method, const std::string& target,
                  bool csrf) {
    std::map<std::string, std::string> h{{"Cookie", "bellhop_session=" + s.cookie}};
    if (csrf) h.emplace("X-CSRF-Token", s.csrf);
    return http_request(port_, method, target, "", h);
  };

  // An admin's session reads everything and, with its CSRF token, changes things.
  auto r = with(admin_session, "GET", "/v1/admin/overview", false);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(with(admin_session, "GET", "/v1/admin/queues", false).status, 200);
  EXPECT_EQ(with(admin_session, "GET", "/v1/admin/inbound/dead", false).status, 200);
  r = with(admin_session, "POST", "/v1/admin/queues/whatsapp/pause", false);
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_STREQ(json(r.body)["error"]["code"].GetString(), "csrf_failed");
  EXPECT_EQ(redis.cli("EXISTS outbound:whatsapp:paused"), "0");
  r = with(admin_session, "POST", "/v1/admin/queues/whatsapp/pause", true);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(redis.cli("EXISTS outbound:whatsapp:paused"), "1");
  // Another site's page cannot use the cookie, whatever the token.
  r = http_request(port_, "POST", "/v1/admin/queues/whatsapp/resume", "",
                   {{"Cookie", "bellhop_session=" + admin_session.cookie},
                    {"X-CSRF-Token", admin_session.csrf},
                    {"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(redis.cli("EXISTS outbound:whatsapp:paused"), "1");

  // A staff session is no admin's: 403 on every admin route, nothing changed.
  for (const auto& [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"GET", "/v1/admin/overview"},
           {"GET", "/v1/admin/queues"},
           {"GET", "/v1/admin/queues/whatsapp/dead"},
           {"GET", "/v1/admin/inbound/dead"},
           {"POST", "/v1/admin/inbound/dead/retry"},
           {"POST", "/v1/admin/queues/whatsapp/resume"},
           {"DELETE", "/v1/admin/queues/whatsapp/dead"}}) {
    r = with(staff_session, method, target, true);
    EXPECT_EQ(r.status, 403) << method << " " << target << ": " << r.body;
    const auto d = json(r.body);
    ASSERT_TRUE(d.IsObject()) << r.body;
    EXPECT_STREQ(d["error"]["code"].GetString(), "forbidden") << target;
    EXPECT_STREQ(d["error"]["message"].GetString(), "admins only") << target;
  }
  EXPECT_EQ(redis.cli("EXISTS outbound:whatsapp:paused"), "1");

  // The admin token beside a cookie is the token's request; a wrong one is 401 whatever the
  // cookie (a staff token or anything else in Authorization never falls back to the cookie).
  r = http_request(port_, "GET", "/v1/admin/overview", "",
                   {{"Cookie", "bellhop_session=" + admin_session.cookie},
                    {"Authorization", "Bearer not-the-admin-token"}});
  EXPECT_EQ(r.status, 401) << r.body;
  r = http_request(port_, "GET", "/v1/admin/overview", "",
                   {{"Cookie", "bellhop_session=" + staff_session.cookie},
                    {"Authorization", "Bearer " + admin_token}});
  EXPECT_EQ(r.status, 200) << r.body;

  // Signed out: the cookie admits no more.
  EXPECT_EQ(with(admin_session, "POST", "/v1/auth/logout", true).status, 200);
  EXPECT_EQ(with(admin_session, "GET", "/v1/admin/overview", false).status, 401);
}

TEST_F(AdminApi, AnAccountsHealthIsWrittenAtMostOnceASecond) {
  redis_server redis;
  fake_provider graph([](const fake_request&, std::size_t i) { return graph_ok(i); });
  auto bellhop = start_bellhop(redis, graph);
  int n = 0;
  auto stored = [&] {
    const auto body = whatsapp_text("wamid.H" + std::to_string(++n), "hi");
    return webhook(body, hmac_sha256(app_secret, body, dir_.path())).status == 200;
  };
  auto ok_at = [&] { return redis.cli("HGET account_health:whatsapp 1234:webhook_ok_at"); };
  ASSERT_TRUE(stored()) << bellhop.output();
  ASSERT_TRUE(eventually([&] { return !ok_at().empty(); }));
  const auto first = std::stoll(ok_at());
  // Webhook after webhook: the time moves on only once a second has passed since it was set.
  std::string next;
  ASSERT_TRUE(eventually(
      [&] {
        EXPECT_TRUE(stored());
        next = ok_at();
        return next != std::to_string(first);
      },
      5s));
  EXPECT_GE(std::stoll(next) - first, 1000) << n << " webhooks";
  EXPECT_GT(n, 3);  // several came in between and were not written
}

}  // namespace
}  // namespace bellhop::test
