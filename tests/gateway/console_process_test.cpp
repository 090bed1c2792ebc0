// The operations console (/console/ and /admin/, docs/console.md) in Debian's Chromium
// (tests/browser/console.mjs, playwright-core) against a real bellhop and redis-server, with the
// WhatsApp Graph API played by fake_provider. This test makes the accounts with `bellhop user
// add` (password on stdin) and a dead letter, restarts Bellhop when the browser script asks, and
// checks afterwards what reached the provider and Redis: the reply sent once, the dead letter
// sent again once. The browser script checks the pages.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "support/fake_provider.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"
#include "support/signatures.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path browser_dir = fs::path(__FILE__).parent_path().parent_path() / "browser";
const std::string adapter_key = "console-test-adapter-key-0123456789";
const std::string jwt_secret = "console-test-jwt-secret-0123456789abcdef";
const std::string admin_token = "console-test-admin-token-0123456789";
const std::string app_secret = "console-test-whatsapp-app-secret";
const std::string password = "correct horse battery";  // the accounts' (10+ characters)
const std::string dead_text = "Dead letter please <b>bold</b>";

// The Graph API: refuses the first send of `dead_text` for good (a dead letter), accepts every
// other send with wamid.OUT<n>.
fake_response graph(const fake_request& r, std::size_t i, std::atomic<int>& refused) {
  if (r.body.find("Dead letter please") != std::string::npos && refused.fetch_add(1) == 0) {
    return {400,
            R"({"error":{"message":"(#131026) Message undeliverable","code":131026}})",
            {{"Content-Type", "application/json"}}};
  }
  return {200,
          R"({"messaging_product":"whatsapp","messages":[{"id":"wamid.OUT)" + std::to_string(i) +
              R"("}]})",
          {{"Content-Type", "application/json"}}};
}

class Console : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    config_ = dir_.path() / "config.json";
    std::ofstream(config_) << R"({
      "listen": "127.0.0.1:)"
                           << port_ << R"(",
      "public_url": "http://127.0.0.1:)"
                           << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                           << R"(",
      "redis": {"url": ")" << redis_.url()
                           << R"(", "command_timeout_ms": 1000},
      "outbound": {"backoff_initial_ms": 100, "backoff_max_ms": 400},
      "ratelimit": {"policies": {"staff_reply": {"algorithm": "sliding_window", "limit": 1,
                                                 "window_ms": 60000}}},
      "properties": [{"id": "hotel-berlin", "name": "Hotel Berlin", "time_zone": "Europe/Berlin"},
                     {"id": "hotel-paris", "name": "Hotel Paris", "time_zone": "Europe/Paris"}],
      "auth": {"adapter_keys": [{"name": "adapter", "key": ")"
                           << adapter_key << R"(",
                                  "properties": ["*"]}],
               "jwt_secret": ")"
                           << jwt_secret << R"(", "admin_token": ")" << admin_token << R"("},
      "channels": {"whatsapp": {"app_secret": ")"
                           << app_secret << R"(", "verify_token": "verify",
        "access_token": "graph-token", "phone_number_id": "1234", "property_id": "hotel-berlin",
        "api_base_url": ")" << graph_.url()
                           << R"(/v21.0"}}
    })";
    start_bellhop();
  }

  void start_bellhop() {
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config_.string()},
                             dir_.path() / ("bellhop" + std::to_string(++starts_) + ".log"));
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // `bellhop user add`, the password on stdin (never an argument).
  void add_user(const std::string& name, const std::string& role, const std::string& properties) {
    const auto out = run_capture(
        "printf '%s\\n' " + shell_quote(password) + " | " + shell_quote(BELLHOP_BINARY) +
            " user add " + name + " --role " + role + " --properties " + shell_quote(properties) +
            " --config " + shell_quote(config_.string()) + "; echo \"exit=$?\"",
        true);
    ASSERT_NE(out.find("exit=0"), std::string::npos) << out;
    EXPECT_EQ(out.find(password), std::string::npos) << "the password was printed";
  }

  std::size_t provider_sends_of(const std::string& text) {
    std::size_t n = 0;
    for (const auto& r : graph_.requests()) n += r.body.find(text) != std::string::npos ? 1 : 0;
    return n;
  }

  temp_dir dir_;
  redis_server redis_;
  std::atomic<int> refused_{0};
  fake_provider graph_{
      [this](const fake_request& r, std::size_t i) { return graph(r, i, refused_); }};
  child_process bellhop_;
  fs::path config_;
  std::uint16_t port_ = 0;
  int starts_ = 0;
};

TEST_F(Console, InChromiumStaffAnswerGuestsLiveAndAnAdminOperatesTheQueues) {
  ASSERT_TRUE(fs::exists(browser_dir / "node_modules" / "playwright-core"))
      << "playwright-core is not installed: run `npm ci --no-audit --no-fund` in tests/browser";
  ASSERT_TRUE(fs::exists(browser_dir / "node_modules" / "axe-core"))
      << "axe-core is not installed: run `npm ci --no-audit --no-fund` in tests/browser";
  add_user("ana", "staff", "hotel-berlin");
  add_user("paul", "staff", "hotel-paris");
  add_user("root", "admin", "*");
  if (HasFatalFailure()) return;

  // A dead letter for the admin page: the provider refuses it for good. (The guest wrote first:
  // WhatsApp's customer-service window is open, so the send reaches the provider.)
  auto wrote = http_request(
      port_, "POST", "/v1/messages/inbound",
      R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":"wamid.dead.1",)"
      R"("from":"+4915100000001","text":"Please write back"})",
      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + adapter_key}});
  ASSERT_EQ(wrote.status, 202) << wrote.body;
  auto queued = http_request(
      port_, "POST", "/v1/messages/outbound",
      R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915100000001","text":")" +
          dead_text + R"("})",
      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + adapter_key}});
  ASSERT_EQ(queued.status, 202) << queued.body;
  ASSERT_TRUE(eventually([&] { return redis_.cli("LLEN outbound:whatsapp:dead") == "1"; }, 10s))
      << bellhop_.output();
  ASSERT_EQ(provider_sends_of("Dead letter please"), 1u)
      << redis_.cli("LRANGE outbound:whatsapp:dead 0 -1");

  child_process browser(
      {"node", (browser_dir / "console.mjs").string(), "--bellhop",
       "http://127.0.0.1:" + std::to_string(port_), "--adapter-key", adapter_key, "--app-secret",
       app_secret, "--password", password, "--out", dir_.path().string()},
      dir_.path() / "browser.log");
  // The script asks for Bellhop restarts (restart-<n>.request); stop it (SIGTERM) and start it
  // again on the same port while the pages stay open. "lose-events": meanwhile the property's
  // event counter and history go, as when Redis loses its data.
  const auto deadline = std::chrono::steady_clock::now() + 170s;
  std::optional<int> status;
  int restarts = 0;
  while (!(status = browser.wait(100ms)) && std::chrono::steady_clock::now() < deadline) {
    const auto request = dir_.path() / ("restart-" + std::to_string(restarts + 1) + ".request");
    if (!fs::exists(request)) continue;
    ++restarts;
    std::string how;
    std::ifstream(request) >> how;
    bellhop_.signal(SIGTERM);
    ASSERT_TRUE(bellhop_.wait(20s).has_value()) << "bellhop did not stop";
    if (how == "lose-events")
      redis_.cli("DEL property:hotel-berlin:seq property:hotel-berlin:events");
    start_bellhop();
    std::ofstream(dir_.path() / ("restart-" + std::to_string(restarts) + ".done")) << "done\n";
  }
  ASSERT_EQ(status, 0) << browser.output() << "\nbellhop:\n" << bellhop_.output();
  EXPECT_EQ(restarts, 2);
  for (const auto* page : {"sign-in", "inbox", "admin"}) {
    for (const auto* width : {"1280", "360"}) {
      EXPECT_TRUE(fs::exists(dir_.path() / (std::string("console-") + page + "-" + width + ".png")))
          << page << " at " << width;
    }
  }

  // The browser's figures and ids: its last output line.
  const auto out = browser.output();
  const auto last = parse_json(out.substr(out.rfind("\n{") + 1));
  std::cout << "console figures: " << out.substr(out.rfind("\n{") + 1) << "\n";
  const auto conversation = string_member(last, "conversation_id");
  ASSERT_EQ(conversation.size(), 34u) << out;

  // The reply, pressed twice: queued once, sent to the provider once, stored once.
  EXPECT_EQ(provider_sends_of("We kept a table by the window for you."), 1u);
  int stored = 0;
  const auto messages = redis_.cli("LRANGE conversation:" + conversation + ":messages 0 -1");
  for (std::size_t at = 0;
       (at = messages.find("We kept a table by the window", at)) != std::string::npos; ++at) {
    ++stored;
  }
  EXPECT_EQ(stored, 1) << messages;
  // The reply refused by the rate limit never went out, nor did the held AI suggestion.
  EXPECT_EQ(provider_sends_of("A second reply right away"), 0u);
  EXPECT_EQ(provider_sends_of("Breakfast is included"), 0u);
  // The dead letter: refused once, retried from the page and sent once more; none left.
  EXPECT_EQ(provider_sends_of("Dead letter please"), 2u);
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp:dead"), "0");
  EXPECT_EQ(redis_.cli("EXISTS outbound:whatsapp:paused"), "0");
}

}  // namespace
}  // namespace bellhop::test
