// The guests' web chat widget (GET /v1/webchat/widget.js): served with its ETag, and used for
// real in Debian's Chromium (tests/browser/webchat_widget.mjs, playwright-core) on a page of
// another origin, against a real bellhop, redis-server and the demo AI engine. The browser
// script checks the page; this test checks what reached Bellhop.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path browser_dir = fs::path(__FILE__).parent_path().parent_path() / "browser";
const fs::path examples_dir = BELLHOP_EXAMPLES_DIR;
const std::string adapter_key = "widget-test-adapter-key-0123456789";
const std::string jwt_secret = "widget-test-jwt-secret-0123456789abcdef";

class WebchatWidget : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    page_port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)" << port_ << R"(",
      "data_dir": ")" << (dir_.path() / "data").string() << R"(",
      "redis": {"url": ")" << redis_.url() << R"(", "command_timeout_ms": 1000},
      "auth": {"adapter_keys": [{"name": "site", "key": ")" << adapter_key << R"(",
                                  "properties": ["hotel-berlin"]}],
               "jwt_secret": ")" << jwt_secret << R"("},
      "channels": {"webchat": {"property_id": "hotel-berlin",
                               "allowed_origin": "http://127.0.0.1:)" << page_port_ << R"("}}
    })";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
  }

  // GET with a staff token for hotel-berlin; the parsed body.
  rapidjson::Document staff_get(const std::string& target) {
    const auto token = contract::mint_staff_token(jwt_secret, "frontdesk", {"hotel-berlin"},
                                                  std::chrono::system_clock::now(), 1h);
    auto r = http_request(port_, "GET", target, "", {{"Authorization", "Bearer " + token}});
    EXPECT_EQ(r.status, 200) << r.body;
    return parse_json(r.body);
  }

  temp_dir dir_;
  redis_server redis_;
  child_process bellhop_;
  std::uint16_t port_ = 0, page_port_ = 0;
};

TEST_F(WebchatWidget, IsServedAsJavaScriptWithAnETag) {
  auto js = http_get(port_, "/v1/webchat/widget.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_EQ(js.headers["x-content-type-options"], "nosniff");
  EXPECT_NE(js.body.find("/v1/webchat"), std::string::npos);
  const auto etag = js.headers["etag"];
  ASSERT_FALSE(etag.empty());
  auto again = http_request(port_, "GET", "/v1/webchat/widget.js", "", {{"If-None-Match", etag}});
  EXPECT_EQ(again.status, 304);
  EXPECT_TRUE(again.body.empty());
  auto changed = http_request(port_, "GET", "/v1/webchat/widget.js", "",
                              {{"If-None-Match", "\"another\""}});
  EXPECT_EQ(changed.status, 200);
  auto plain = http_get(port_, "/v1/webchat");  // no Upgrade
  EXPECT_EQ(plain.status, 426);
  EXPECT_EQ(string_member(parse_json(plain.body)["error"], "code"), "upgrade_required");
}

TEST_F(WebchatWidget, InChromiumAGuestChatsWithTheDemoEngineAndNothingIsLostOrDoubled) {
  child_process engine({BELLHOP_DEMO_ENGINE_BINARY, "--redis", redis_.url(), "--consumer",
                        "demo-widget", "--faq",
                        (examples_dir / "demo-engine" / "faq.json").string()},
                       dir_.path() / "engine.log");
  ASSERT_TRUE(fs::exists(browser_dir / "node_modules" / "playwright-core"))
      << "playwright-core is not installed: run `npm ci --no-audit --no-fund` in tests/browser";
  child_process browser({"node", (browser_dir / "webchat_widget.mjs").string(), "--bellhop",
                         "http://127.0.0.1:" + std::to_string(port_), "--page-port",
                         std::to_string(page_port_), "--adapter-key", adapter_key, "--out",
                         dir_.path().string()},
                        dir_.path() / "browser.log");
  const auto status = browser.wait(120s);
  ASSERT_EQ(status, 0) << browser.output() << "\nbellhop:\n" << bellhop_.output();
  EXPECT_TRUE(fs::exists(dir_.path() / "webchat_widget.png"));
  if (const char* keep = std::getenv("BELLHOP_TEST_ARTIFACTS")) {  // to look at the page
    fs::copy_file(dir_.path() / "webchat_widget.png", fs::path(keep) / "webchat_widget.png",
                  fs::copy_options::overwrite_existing);
  }

  // The guest the browser was: its last output line.
  auto out = browser.output();
  auto last = out.substr(out.rfind('{'));
  const auto guest = string_member(parse_json(last), "guest");
  ASSERT_EQ(guest.rfind("wc_", 0), 0u) << out;

  // One conversation for the guest, with each of their messages once (the one whose ack was
  // lost among them) and the engine's answer.
  auto list = staff_get("/v1/properties/hotel-berlin/conversations");
  std::string conversation;
  for (const auto& c : list["conversations"].GetArray()) {
    if (string_member(c, "guest") == guest) conversation = string_member(c, "conversation_id");
  }
  ASSERT_FALSE(conversation.empty()) << "no conversation of " << guest;
  auto messages = staff_get("/v1/conversations/" + conversation + "/messages");
  int breakfast = 0, parking = 0;
  for (const auto& m : messages["messages"].GetArray()) {
    const auto text = string_member(m, "text");
    if (text == "Hello, when is breakfast?") ++breakfast;
    if (text == "Is there parking at the hotel?") ++parking;
    EXPECT_EQ(string_member(m, "channel"), "webchat");
  }
  EXPECT_EQ(breakfast, 1);
  EXPECT_EQ(parking, 1);
  // The two tabs of one first visit: one guest, who sent both messages, each once.
  const auto shared = string_member(parse_json(last), "shared_guest");
  std::string shared_conversation;
  auto again = staff_get("/v1/properties/hotel-berlin/conversations");
  for (const auto& c : again["conversations"].GetArray()) {
    if (string_member(c, "guest") == shared)
      shared_conversation = string_member(c, "conversation_id");
  }
  ASSERT_FALSE(shared_conversation.empty()) << "no conversation of " << shared;
  // Each message once in the whole property, and in that guest's conversation.
  for (const auto& c : again["conversations"].GetArray()) {
    const auto id = string_member(c, "conversation_id");
    int spa = 0, gym = 0;
    const auto messages_of = staff_get("/v1/conversations/" + id + "/messages");
    for (const auto& m : messages_of["messages"].GetArray()) {
      spa += string_member(m, "text") == "Tab one asks about the spa." ? 1 : 0;
      gym += string_member(m, "text") == "Tab two asks about the gym." ? 1 : 0;
    }
    EXPECT_EQ(spa, id == shared_conversation ? 1 : 0) << id;
    EXPECT_EQ(gym, id == shared_conversation ? 1 : 0) << id;
  }
  // Every reply was confirmed by the page: nothing waits in the outbox.
  EXPECT_EQ(redis_.cli("EXISTS webchat:" + guest + ":outbox"), "0");
  EXPECT_EQ(redis_.cli("LLEN outbound:webchat:dead"), "0");
}

}  // namespace
}  // namespace bellhop::test
