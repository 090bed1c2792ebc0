// Console sign-in end to end (docs/console.md, "Sign-in"): a real bellhop with its embedded
// redis-server, accounts made by `bellhop user …` (password through stdin), the session cookie
// on /v1/auth/*, on the dashboard REST routes, CSRF, the login limits, and sessions ended by
// logout, disable and passwd.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "console-auth-test-adapter-key-0123456789";
const std::string jwt_secret = "console-auth-test-jwt-secret-0123456789abcdef";
// The login limits of these tests (low, so a test reaches them quickly).
constexpr int per_user = 4;
constexpr int per_ip = 8;

std::string header(const http_result& r, const std::string& name) {
  const auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

std::string error_code(const http_result& r) {
  auto d = parse_json(r.body);
  if (!d.IsObject() || !d.HasMember("error")) return "(not an error body: " + r.body + ")";
  return string_member(d["error"], "code");
}

// The session cookie's value in a Set-Cookie header.
std::string cookie_value(const http_result& r) {
  const auto set = header(r, "set-cookie");
  const std::string name = "bellhop_session=";
  if (set.rfind(name, 0) != 0) return "";
  return set.substr(name.size(), set.find(';') - name.size());
}

// `sh -c` quoting of one argument.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct cli_result {
  int status = -1;
  std::string output;  // stdout and stderr
};

class ConsoleAuthProcess : public ::testing::Test {
 protected:
  // `limits`: the login policies of these tests; false: sign-ins are not limited.
  void start(const std::string& public_url = "", bool limits = true) {
    port_ = free_port();
    config_ = dir_.path() / "config.json";
    std::ofstream(config_) << R"({
      "listen": "127.0.0.1:)"
                           << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                           << R"(",)"
                           << (public_url.empty() ? "" : "\"public_url\": \"" + public_url + "\",")
                           << R"(
      "redis": {"url": "embedded", "embedded": {"port": 0}},
      "auth": {"adapter_keys": [{"name": "engine", "key": ")"
                           << adapter_key << R"(", "properties": ["*"]}],
               "jwt_secret": ")"
                           << jwt_secret << R"("},
      "properties": [{"id": "hotel-a", "time_zone": "UTC"}, {"id": "hotel-b", "time_zone": "UTC"}],
      "ratelimit": {)" << (limits ? "" : R"("console_login_user": "", "console_login_ip": "",)")
                           << R"( "policies": {
        "console_login_user": {"algorithm": "sliding_window", "limit": )"
                           << per_user << R"(, "window_ms": 60000},
        "console_login_ip": {"algorithm": "sliding_window", "limit": )"
                           << per_ip << R"(, "window_ms": 60000}}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config_.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // `bellhop user <args>` with `input` on stdin.
  cli_result cli(const std::string& args, const std::string& input = "") {
    const std::string command = "printf '%s' " + shell_quote(input) + " | " +
                                std::string(BELLHOP_BINARY) + " user " + args + " --config " +
                                shell_quote(config_.string()) + " 2>&1; echo \"rc=$?\"";
    auto out = run_capture(command, true);
    cli_result r;
    const auto at = out.rfind("rc=");
    if (at == std::string::npos) return r;
    r.status = std::stoi(out.substr(at + 3));
    r.output = out.substr(0, at);
    return r;
  }

  void add_user(const std::string& name, const std::string& role, const std::string& properties,
                const std::string& password) {
    const auto r =
        cli("add " + name + " --role " + role + " --properties " + shell_quote(properties),
            password + "\n");
    ASSERT_EQ(r.status, 0) << r.output;
  }

  http_result login(const std::string& user, const std::string& password,
                    std::map<std::string, std::string> headers = {}) {
    headers.emplace("Content-Type", "application/json");
    return http_request(port_, "POST", "/v1/auth/login",
                        R"({"username":")" + user + R"(","password":")" + password + "\"}",
                        headers);
  }

  struct session {
    std::string cookie;
    std::string csrf;
  };
  session signed_in(const std::string& user, const std::string& password) {
    const auto r = login(user, password);
    EXPECT_EQ(r.status, 200) << r.body;
    auto d = parse_json(r.body);
    return {cookie_value(r), string_member(d, "csrf_token")};
  }

  http_result with_cookie(const std::string& method, const std::string& target, const session& s,
                          std::map<std::string, std::string> headers = {}) {
    headers.emplace("Cookie", "bellhop_session=" + s.cookie);
    return http_request(port_, method, target, "", headers);
  }

  // A guest message to `property`; returns its conversation id.
  std::string conversation(const std::string& property, const std::string& from) {
    const auto r = http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":"ext-)" + from +
            R"(","from":")" + from + R"(","text":"hello"})",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 202) << r.body;
    return string_member(parse_json(r.body), "conversation_id");
  }

  temp_dir dir_;
  std::filesystem::path config_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
};

TEST_F(ConsoleAuthProcess, UserCommandsAddListDisableEnablePasswd) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  add_user("root", "admin", "*", "battery staple 2");

  auto r = cli("add ana --role staff --properties hotel-a", "another password\n");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("user 'ana' exists"), std::string::npos) << r.output;
  r = cli("add bob --role boss --properties hotel-a", "another password\n");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("bad role"), std::string::npos) << r.output;
  r = cli("add bob --role staff --properties hotel-z", "another password\n");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("bad property id 'hotel-z'"), std::string::npos) << r.output;
  r = cli("add bob --role staff --properties hotel-a", "short\n");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("password too short"), std::string::npos) << r.output;
  r = cli("disable nobody");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("unknown user 'nobody'"), std::string::npos) << r.output;

  r = cli("list");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ana"), std::string::npos);
  EXPECT_NE(r.output.find("hotel-a"), std::string::npos);
  EXPECT_NE(r.output.find("root"), std::string::npos);
  EXPECT_EQ(r.output.find("bob"), std::string::npos);
  EXPECT_EQ(r.output.find("argon2"), std::string::npos) << "the list never shows a hash";
  EXPECT_EQ(r.output.find("disabled"), std::string::npos) << r.output;

  ASSERT_EQ(cli("disable ana").status, 0);
  r = cli("list");
  EXPECT_NE(r.output.find("disabled"), std::string::npos) << r.output;
  EXPECT_EQ(login("ana", "correct horse 1").status, 401);
  ASSERT_EQ(cli("enable ana").status, 0);
  EXPECT_EQ(login("ana", "correct horse 1").status, 200);

  ASSERT_EQ(cli("passwd ana", "a new password 3\n").status, 0);
  EXPECT_EQ(login("ana", "correct horse 1").status, 401);
  EXPECT_EQ(login("ana", "a new password 3").status, 200);
}

TEST_F(ConsoleAuthProcess, UserCommandWithoutRunningBellhopSaysSo) {
  port_ = free_port();
  config_ = dir_.path() / "config.json";
  std::ofstream(config_) << R"({"data_dir": ")" << (dir_.path() / "data").string() << R"("})";
  const auto r = cli("list");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("bellhop is not running"), std::string::npos) << r.output;
}

TEST_F(ConsoleAuthProcess, LoginAcceptedAndRefusedAlike) {
  start();
  add_user("ana", "staff", "hotel-a,hotel-b", "correct horse 1");
  add_user("eve", "staff", "hotel-a", "correct horse 2");
  ASSERT_EQ(cli("disable eve").status, 0);

  const auto ok = login("ana", "correct horse 1");
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto d = parse_json(ok.body);
  EXPECT_EQ(string_member(d, "user"), "ana");
  EXPECT_EQ(string_member(d, "role"), "staff");
  ASSERT_TRUE(d["properties"].IsArray());
  EXPECT_EQ(d["properties"].Size(), 2u);
  EXPECT_EQ(string_member(d, "csrf_token").size(), 43u);
  EXPECT_FALSE(string_member(d, "expires_at").empty());
  EXPECT_EQ(cookie_value(ok).size(), 43u);

  for (const auto& [user, password] :
       {std::pair{"ana", "wrong password"}, std::pair{"nobody", "correct horse 1"},
        std::pair{"eve", "correct horse 2"}}) {
    const auto r = login(user, password);
    EXPECT_EQ(r.status, 401) << user;
    EXPECT_EQ(error_code(r), "invalid_credentials") << user;
    EXPECT_EQ(header(r, "set-cookie"), "") << user;
  }

  auto r = http_request(port_, "POST", "/v1/auth/login", R"({"username":"ana","password":"x"})",
                        {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 415);
  r = http_request(port_, "POST", "/v1/auth/login", R"({"username":"ana",)",
                   {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(error_code(r), "malformed_json");
  r = http_request(port_, "POST", "/v1/auth/login", std::string(5000, ' ') + "{}",
                   {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.status, 413);
}

TEST_F(ConsoleAuthProcess, CookieFlagsWithoutHttps) {
  start("http://127.0.0.1:1");
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  const auto r = login("ana", "correct horse 1");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto set = header(r, "set-cookie");
  EXPECT_NE(set.find("; Path=/"), std::string::npos) << set;
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos) << set;
  EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos) << set;
  EXPECT_NE(set.find("; Max-Age=43200"), std::string::npos) << set;
  EXPECT_EQ(set.find("Secure"), std::string::npos) << set;
}

TEST_F(ConsoleAuthProcess, CookieIsSecureWithAnHttpsPublicUrl) {
  start("https://hotel.example");
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  const auto r = login("ana", "correct horse 1");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto set = header(r, "set-cookie");
  EXPECT_NE(set.find("; HttpOnly"), std::string::npos) << set;
  EXPECT_NE(set.find("; SameSite=Strict"), std::string::npos) << set;
  EXPECT_NE(set.find("; Secure"), std::string::npos) << set;
  const auto out = with_cookie("POST", "/v1/auth/logout", {cookie_value(r), ""});
  EXPECT_NE(header(out, "set-cookie").find("; Secure"), std::string::npos);
}

TEST_F(ConsoleAuthProcess, MeAndLogout) {
  start();
  add_user("root", "admin", "*", "correct horse 1");
  EXPECT_EQ(http_get(port_, "/v1/auth/me").status, 401);
  const auto s = signed_in("root", "correct horse 1");
  const auto other = signed_in("root", "correct horse 1");

  auto me = with_cookie("GET", "/v1/auth/me", s);
  ASSERT_EQ(me.status, 200) << me.body;
  auto d = parse_json(me.body);
  EXPECT_EQ(string_member(d, "user"), "root");
  EXPECT_EQ(string_member(d, "role"), "admin");
  EXPECT_EQ(string_member(d, "csrf_token"), s.csrf);
  ASSERT_TRUE(d["properties"].IsArray());
  EXPECT_EQ(std::string(d["properties"][0].GetString()), "*");

  // A foreign page cannot sign the browser out.
  EXPECT_EQ(with_cookie("POST", "/v1/auth/logout", s, {{"Origin", "http://evil.example"}}).status,
            403);
  const auto out = with_cookie("POST", "/v1/auth/logout", s);
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(out.body, R"({"signed_out":true})");
  EXPECT_NE(header(out, "set-cookie").find("bellhop_session=;"), std::string::npos);
  EXPECT_NE(header(out, "set-cookie").find("Max-Age=0"), std::string::npos);
  me = with_cookie("GET", "/v1/auth/me", s);
  EXPECT_EQ(me.status, 401);
  EXPECT_EQ(error_code(me), "unauthorized");
  // Only that session ended.
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", other).status, 200);
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", {"not-a-session", ""}).status, 401);
}

TEST_F(ConsoleAuthProcess, DisableAndPasswdEndTheUsersSessionsAtOnce) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  const auto a = signed_in("ana", "correct horse 1");
  const auto b = signed_in("ana", "correct horse 1");
  ASSERT_EQ(with_cookie("GET", "/v1/auth/me", a).status, 200);
  ASSERT_EQ(cli("disable ana").status, 0);
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", a).status, 401);
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", b).status, 401);
  EXPECT_EQ(with_cookie("GET", "/v1/properties/hotel-a/conversations", b).status, 401);
  // Enabling again does not bring the ended sessions back.
  ASSERT_EQ(cli("enable ana").status, 0);
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", a).status, 401);

  const auto c = signed_in("ana", "correct horse 1");
  ASSERT_EQ(with_cookie("GET", "/v1/auth/me", c).status, 200);
  ASSERT_EQ(cli("passwd ana", "a new password 2\n").status, 0);
  EXPECT_EQ(with_cookie("GET", "/v1/auth/me", c).status, 401);
}

TEST_F(ConsoleAuthProcess, LoginAttemptsAreLimitedPerUser) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  for (int i = 0; i < per_user; ++i) EXPECT_EQ(login("ana", "wrong password").status, 401);
  // Over the limit even the right password is refused until the window ends.
  const auto r = login("ana", "correct horse 1");
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(error_code(r), "too_many_attempts");
  EXPECT_FALSE(header(r, "retry-after").empty());
  EXPECT_GE(std::stoi(header(r, "retry-after")), 1);
  // Another user from the same address is not limited by ana's attempts.
  add_user("bob", "staff", "hotel-a", "correct horse 2");
  EXPECT_EQ(login("bob", "correct horse 2").status, 200);
}

TEST_F(ConsoleAuthProcess, LoginAttemptsAreLimitedPerClientAddress) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  for (int i = 0; i < per_ip; ++i) {
    const auto r = login("guess" + std::to_string(i), "wrong password");
    EXPECT_EQ(r.status, 401) << i;
  }
  const auto r = login("ana", "correct horse 1");
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(error_code(r), "too_many_attempts");
  EXPECT_FALSE(header(r, "retry-after").empty());
}

TEST_F(ConsoleAuthProcess, StaffSessionSeesOnlyItsProperties) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  const auto in_a = conversation("hotel-a", "+4915100001");
  const auto in_b = conversation("hotel-b", "+4915100002");
  const auto s = signed_in("ana", "correct horse 1");

  auto r = with_cookie("GET", "/v1/properties/hotel-a/conversations", s);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(in_a), std::string::npos);
  r = with_cookie("GET", "/v1/properties/hotel-b/conversations", s);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_code(r), "forbidden");
  EXPECT_EQ(with_cookie("GET", "/v1/conversations/" + in_a + "/messages", s).status, 200);
  r = with_cookie("GET", "/v1/conversations/" + in_b + "/messages", s);
  EXPECT_EQ(r.status, 404);

  // A staff token keeps working beside sessions, exactly as before.
  const auto token = contract::mint_staff_token(jwt_secret, "tok", {"hotel-b"},
                                                std::chrono::system_clock::now(), 1h);
  r = http_request(port_, "GET", "/v1/properties/hotel-b/conversations", "",
                   {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find(in_b), std::string::npos);
  EXPECT_EQ(http_request(port_, "GET", "/v1/properties/hotel-a/conversations", "",
                         {{"Authorization", "Bearer " + token}})
                .status,
            403);
}

// GET /v1/properties: the configured properties a session or token covers, for an inbox that
// follows them all.
TEST_F(ConsoleAuthProcess, PropertiesListsWhatTheCredentialCovers) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  add_user("root", "admin", "*", "correct horse 2");
  auto ids = [](const http_result& r) {
    std::vector<std::string> out;
    auto d = parse_json(r.body);
    if (!d.IsObject() || !d.HasMember("properties") || !d["properties"].IsArray()) return out;
    for (const auto& p : d["properties"].GetArray()) out.push_back(string_member(p, "id"));
    return out;
  };
  auto r = with_cookie("GET", "/v1/properties", signed_in("ana", "correct horse 1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids(r), std::vector<std::string>{"hotel-a"});
  r = with_cookie("GET", "/v1/properties", signed_in("root", "correct horse 2"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ids(r), (std::vector<std::string>{"hotel-a", "hotel-b"}));
  auto d = parse_json(r.body);
  EXPECT_EQ(string_member(d["properties"][0], "name"), "hotel-a") << "no name: the id";
  EXPECT_EQ(string_member(d["properties"][0], "time_zone"), "UTC");
  const auto token = contract::mint_staff_token(jwt_secret, "tok", {"hotel-b"},
                                                std::chrono::system_clock::now(), 1h);
  r = http_request(port_, "GET", "/v1/properties", "", {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(ids(r), std::vector<std::string>{"hotel-b"});
  r = http_request(port_, "GET", "/v1/properties", "");
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(error_code(r), "unauthorized");
}

TEST_F(ConsoleAuthProcess, PostsByCookieNeedTheCsrfTokenAndThisOrigin) {
  start();
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  const auto in_a = conversation("hotel-a", "+4915100001");
  const auto in_b = conversation("hotel-b", "+4915100002");
  const auto s = signed_in("ana", "correct horse 1");
  const std::string read_a = "/v1/conversations/" + in_a + "/read";

  auto r = with_cookie("POST", read_a, s);
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_code(r), "csrf_failed");
  r = with_cookie("POST", read_a, s, {{"X-CSRF-Token", "wrong"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_code(r), "csrf_failed");
  r = with_cookie("POST", read_a, s, {{"X-CSRF-Token", s.csrf}, {"Origin", "http://evil.example"}});
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_code(r), "csrf_failed");

  r = with_cookie("POST", read_a, s,
                  {{"X-CSRF-Token", s.csrf},
                   {"Origin", "http://127.0.0.1"}});  // the test client sends Host: 127.0.0.1
  EXPECT_EQ(r.status, 200) << r.body;
  r = with_cookie("POST", "/v1/conversations/" + in_b + "/read", s, {{"X-CSRF-Token", s.csrf}});
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(error_code(r), "forbidden");
  r = with_cookie("POST", "/v1/conversations/" + in_a + "/handoff", s,
                  {{"X-CSRF-Token", s.csrf}, {"Content-Type", "application/json"}});
  // No body: handoff needs a reason (the session got past authentication).
  EXPECT_EQ(r.status, 422) << r.body;
}

TEST_F(ConsoleAuthProcess, MoreSignInsAtOnceThanThePoolHoldsAre503) {
  start("", false);
  add_user("ana", "staff", "hotel-a", "correct horse 1");
  // Two hashing threads and 32 waiting: of 64 sign-ins at once some must be refused at once,
  // and every other one is answered as usual.
  constexpr int attempts = 64;
  std::atomic<int> refused{0}, answered{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < attempts; ++i) {
    threads.emplace_back([&] {
      const auto r = login("ana", "wrong password");
      if (r.status == 503 && error_code(r) == "unavailable" && header(r, "retry-after") == "1")
        ++refused;
      else if (r.status == 401)
        ++answered;
      else
        ++other;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_GE(answered.load(), 32);
  EXPECT_EQ(refused.load() + answered.load(), attempts);
  // The pool recovers: a sign-in afterwards is checked.
  EXPECT_EQ(login("ana", "correct horse 1").status, 200);
}

}  // namespace
}  // namespace bellhop::test
