// examples/dashboard/dashboard.py as a real process against a real bellhop and redis-server:
// what it prints, how it resumes with `since` from its file, and that its replies are queued
// once per guest message even when it answers the same events again.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bellhop/contract/staff_token.hpp"
#include "support/http_client.hpp"
#include "support/json.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// examples/ of this source tree (the test sits in tests/gateway/).
const fs::path dashboard_script =
    fs::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "dashboard" /
    "dashboard.py";
const std::string adapter_key = "dashboard-example-adapter-key-0123456789";
const std::string jwt_secret = "dashboard-example-jwt-secret-0123456789abcdef";
const std::string property = "hotel-berlin";

rapidjson::Document parse(const std::string& text) { return parse_json(text); }
std::string str(const rapidjson::Value& v, const char* name) { return string_member(v, name); }

// One printed line: {"property_id","seq","event","id"?} or {"property_id","seq","reload":true}.
struct line {
  std::string property_id, event, id;
  std::int64_t seq = -1;
  bool reload = false;
};

class DashboardExample : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(dashboard_script)) << dashboard_script;
    port_ = free_port();
    bellhop_ = start_bellhop(port_);
  }

  // A bellhop process on `port` with the test's Redis (several may share it).
  child_process start_bellhop(std::uint16_t port) {
    const auto name = "bellhop-" + std::to_string(port) + "-" + std::to_string(++starts_);
    const auto config = dir_.path() / (name + ".json");
    std::ofstream(config) << R"({"listen": "127.0.0.1:)" << port << R"(", "data_dir": ")"
                          << (dir_.path() / name).string() << R"(", "redis": {"url": ")"
                          << redis_.url() << R"("}, "auth": {"adapter_keys": [{"name": "all", )"
                          << R"("key": ")" << adapter_key << R"(", "properties": ["*"]}], )"
                          << R"("jwt_secret": ")" << jwt_secret << R"("}})";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / (name + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  // Starts the example with the token in BELLHOP_TOKEN (as a deployment would, out of `ps`).
  child_process dashboard(std::vector<std::string> extra) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     dashboard_script.string(),
                                     "--url",
                                     "ws://127.0.0.1:" + std::to_string(port_) + "/v1/realtime",
                                     "--property",
                                     property,
                                     "--since-file",
                                     since_file_.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    const auto token = contract::mint_staff_token(jwt_secret, "frontdesk", {property},
                                                  std::chrono::system_clock::now(), 1h);
    return child_process(argv, dir_.path() / ("dashboard-" + std::to_string(++runs_) + ".log"),
                         {{"BELLHOP_TOKEN", token}});
  }

  // Posts n guest messages in order, each from its own guest; returns their ids.
  std::vector<std::string> post(int n, std::uint16_t port = 0) {
    std::vector<std::string> ids;
    http_connection conn(port != 0 ? port : port_);
    for (int i = 0; i < n; ++i, ++posted_) {
      const auto r = conn.request(
          "POST", "/v1/messages/inbound",
          R"({"property_id":")" + property + R"(","channel":"whatsapp","external_id":"wamid.)" +
              std::to_string(posted_) + R"(","from":"+49151000)" + std::to_string(posted_) +
              R"(","text":"Message )" + std::to_string(posted_) + "\"}",
          {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
      EXPECT_EQ(r.status, 202) << r.body;
      ids.push_back(str(parse(r.body), "id"));
    }
    return ids;
  }

  // The JSON lines the example printed (its log also holds stderr, which is prose).
  static std::vector<line> printed(const child_process& p) {
    std::vector<line> out;
    std::istringstream in(p.output());
    for (std::string text; std::getline(in, text);) {
      if (text.rfind("{", 0) != 0) continue;
      auto d = parse(text);
      line l;
      l.property_id = str(d, "property_id");
      l.event = str(d, "event");
      l.id = str(d, "id");
      if (d.IsObject() && d.HasMember("seq") && d["seq"].IsInt64()) l.seq = d["seq"].GetInt64();
      l.reload = d.IsObject() && d.HasMember("reload") && d["reload"].IsTrue();
      out.push_back(l);
    }
    return out;
  }

  std::string since_file_content() const {
    std::ifstream in(since_file_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  child_process bellhop_;
  fs::path since_file_ = dir_.path() / "since.json";
  int posted_ = 0;
  int runs_ = 0;
  int starts_ = 0;
};

TEST_F(DashboardExample, PrintsEveryEventAndResumesFromItsSinceFile) {
  auto first = dashboard({"--count", "20"});
  // It writes the file once subscribed (seq 0): from then on nothing posted is missed.
  ASSERT_TRUE(eventually([&] { return fs::exists(since_file_); })) << first.output();
  const auto ids = post(20);
  ASSERT_EQ(first.wait(15s), 0) << first.output();
  auto lines = printed(first);
  ASSERT_EQ(lines.size(), 20u) << first.output();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].seq, static_cast<std::int64_t>(i + 1)) << first.output();
    EXPECT_EQ(lines[i].property_id, property);
    EXPECT_EQ(lines[i].event, "message.created");
    EXPECT_EQ(lines[i].id, ids[i]);
  }
  EXPECT_EQ(parse(since_file_content())[property.c_str()].GetInt64(), 20)
      << since_file_content();

  // Away while 3 messages arrive; back with since=20: those 3 from history, then 2 live.
  const auto missed = post(3);
  auto second = dashboard({"--count", "5"});
  ASSERT_TRUE(eventually([&] { return printed(second).size() == 3; })) << second.output();
  const auto live = post(2);
  ASSERT_EQ(second.wait(15s), 0) << second.output();
  lines = printed(second);
  ASSERT_EQ(lines.size(), 5u) << second.output();
  std::vector<std::string> expected = missed;
  expected.insert(expected.end(), live.begin(), live.end());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].seq, static_cast<std::int64_t>(21 + i)) << second.output();
    EXPECT_EQ(lines[i].id, expected[i]);
    EXPECT_FALSE(lines[i].reload);
  }
  EXPECT_EQ(parse(since_file_content())[property.c_str()].GetInt64(), 25);

  // A since file from another Redis (ahead of the counter): recovered:false, a reload line,
  // then live from the current seq.
  std::ofstream(since_file_) << R"({")" << property << R"(": 1000})";
  auto third = dashboard({"--count", "1"});
  ASSERT_TRUE(eventually([&] { return printed(third).size() == 1; })) << third.output();
  post(1);
  ASSERT_EQ(third.wait(15s), 0) << third.output();
  lines = printed(third);
  ASSERT_EQ(lines.size(), 2u) << third.output();
  EXPECT_TRUE(lines[0].reload);
  EXPECT_EQ(lines[0].seq, 25);
  EXPECT_EQ(lines[1].seq, 26);
  EXPECT_EQ(lines[1].event, "message.created");
}

TEST_F(DashboardExample, RepliesOncePerGuestMessageEvenWhenEventsAreReplayed) {
  std::ofstream(since_file_) << R"({")" << property << R"(": 0})";
  const auto ids = post(5);
  // 5 guest messages and the message.created of each of its 5 replies.
  auto first = dashboard({"--count", "10", "--reply", "We are on it."});
  ASSERT_EQ(first.wait(15s), 0) << first.output();
  auto lines = printed(first);
  ASSERT_EQ(lines.size(), 10u) << first.output();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].seq, static_cast<std::int64_t>(i + 1)) << first.output();
    EXPECT_EQ(lines[i].event, "message.created");
  }
  ASSERT_EQ(redis_.cli("LLEN outbound:whatsapp"), "5");
  std::istringstream queued(redis_.cli("LRANGE outbound:whatsapp 0 -1"));
  std::vector<std::string> answered;
  std::vector<std::string> reply_ids;
  for (std::string text; std::getline(queued, text);) {
    auto d = parse(text);
    EXPECT_EQ(str(d, "text"), "We are on it.") << text;
    EXPECT_EQ(str(d, "sent_by"), "frontdesk") << text;
    EXPECT_EQ(str(d, "idempotency_key"), "staff:frontdesk:reply-" + str(d, "reply_to")) << text;
    answered.push_back(str(d, "reply_to"));
    reply_ids.push_back(str(d, "id"));
  }
  std::sort(answered.begin(), answered.end());
  auto sorted_ids = ids;
  std::sort(sorted_ids.begin(), sorted_ids.end());
  EXPECT_EQ(answered, sorted_ids) << "each guest message answered once";
  // Its own replies' events are printed too, with the ids the acks carried.
  for (const auto& id : reply_ids) {
    EXPECT_TRUE(std::any_of(lines.begin(), lines.end(), [&](const line& l) { return l.id == id; }))
        << id;
  }

  // As after a crash before the since file was saved: the same events again, the same
  // client_msg_ids again, and nothing new is queued.
  std::ofstream(since_file_) << R"({")" << property << R"(": 0})";
  auto again = dashboard({"--count", "10", "--reply", "We are on it."});
  ASSERT_EQ(again.wait(15s), 0) << again.output();
  EXPECT_EQ(printed(again).size(), 10u) << again.output();
  EXPECT_EQ(redis_.cli("LLEN outbound:whatsapp"), "5");
  EXPECT_EQ(redis_.cli("GET property:" + property + ":seq"), "10") << "no new event either";
}

TEST_F(DashboardExample, ReconnectsWhenBellhopRestartsAndMissesNothing) {
  auto run = dashboard({"--count", "10"});
  ASSERT_TRUE(eventually([&] { return fs::exists(since_file_); })) << run.output();
  post(4);
  ASSERT_TRUE(eventually([&] { return printed(run).size() == 4; })) << run.output();
  bellhop_.signal(SIGTERM);  // the dashboard is closed with 1001 and keeps trying
  ASSERT_EQ(bellhop_.wait(15s), 0) << bellhop_.output();
  {
    // Meanwhile guests write through another bellhop process on the same Redis.
    const auto other_port = free_port();
    auto other = start_bellhop(other_port);
    post(3, other_port);
  }
  bellhop_ = start_bellhop(port_);
  post(3);
  ASSERT_EQ(run.wait(15s), 0) << run.output();
  const auto lines = printed(run);
  ASSERT_EQ(lines.size(), 10u) << run.output();
  for (std::size_t i = 0; i < lines.size(); ++i)
    EXPECT_EQ(lines[i].seq, static_cast<std::int64_t>(i + 1)) << run.output();
  EXPECT_NE(run.output().find("connection closed by bellhop"), std::string::npos) << run.output();
}

}  // namespace
}  // namespace bellhop::test
