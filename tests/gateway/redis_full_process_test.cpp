// Bellhop with its embedded Redis at a small maxmemory (an explicit redis.embedded.maxmemory):
// once Redis is full, POST /v1/messages/inbound answers 503 redis_full with Retry-After and the
// OOM metric moves; every message accepted before is still queued; once an AI engine (the
// example consumers, logged in as the `engine` ACL user) has taken them (Redis below 85% of its
// maxmemory), 202 again.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "support/http_client.hpp"
#include "support/process.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path examples_dir = BELLHOP_EXAMPLES_DIR;
const std::string adapter_key = "redis-full-adapter-key-0123456789";

rapidjson::Document parse(const std::string& json) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  return d;
}

std::string member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject() || !v.HasMember(name) || !v[name].IsString()) return {};
  return v[name].GetString();
}

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(line);
  return out;
}

// The value of an unlabelled metric on /metrics; -1 if absent.
double metric(std::uint16_t port, const std::string& name) {
  for (const auto& line : split_lines(http_get(port, "/metrics").body)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

class RedisFullProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    redis_port_ = free_port();
    data_ = dir_.path() / "data";
    const auto config = dir_.path() / "config.json";
    // Small history and recent-message caps: what the engine takes is most of what is stored.
    std::ofstream(config) << R"({"listen": "127.0.0.1:)" << port_ << R"(", "data_dir": ")"
                          << data_.string() << R"(", "redis": {"url": "embedded", "embedded": )"
                          << R"({"port": )" << redis_port_ << R"(, "maxmemory": "16mb"}},)"
                          << R"( "inbound": {"history_max": 1},)"
                          << R"( "realtime": {"recent_messages": 1},)"
                          << R"( "auth": {"adapter_keys": [)"
                          << R"({"name": "a", "key": ")" << adapter_key
                          << R"(", "properties": ["*"]}]}})";
    bellhop_ = child_process({BELLHOP_BINARY, "serve", "--config", config.string()},
                             dir_.path() / "bellhop.log");
    ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << bellhop_.output();
    std::ifstream(data_ / "redis.password") >> bellhop_password_;
    std::ifstream(data_ / "engine.password") >> engine_password_;
    ASSERT_FALSE(bellhop_password_.empty());
    ASSERT_FALSE(engine_password_.empty());
  }

  // As bellhop (full access), to look at what is stored.
  std::string cli(const std::string& args) {
    return run_capture("redis-cli --no-auth-warning -h 127.0.0.1 -p " +
                       std::to_string(redis_port_) + " -a '" + bellhop_password_ + "' " + args);
  }
  std::string engine_url() const {
    return "redis://engine:" + engine_password_ + "@127.0.0.1:" + std::to_string(redis_port_);
  }

  http_result post(http_connection& http, int n) {
    return http.request(
        "POST", "/v1/messages/inbound",
        R"({"property_id":"hotel-berlin","channel":"whatsapp",)"
        R"("external_id":"wamid.full.)" +
            std::to_string(n) + R"(","from":"+4915112345678","text":")" + text_ + R"("})",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t redis_port_ = 0;
  fs::path data_;
  child_process bellhop_;
  std::string bellhop_password_;
  std::string engine_password_;
  const std::string text_ = std::string(16000, 'x');
};

TEST_F(RedisFullProcess, AFullRedisAnswers503KeepsWhatItHasAndRecoversOnceEnginesTakeMessages) {
  EXPECT_EQ(cli("CONFIG GET maxmemory"), "maxmemory\n16777216");
  EXPECT_EQ(cli("CONFIG GET maxmemory-policy"), "maxmemory-policy\nnoeviction");
  EXPECT_EQ(metric(port_, "bellhop_redis_oom_total"), 0);
  ASSERT_TRUE(
      eventually([&] { return metric(port_, "bellhop_redis_maxmemory_bytes") == 16777216; }));
  EXPECT_EQ(metric(port_, "bellhop_redis_full"), 0);

  http_connection http(port_);
  std::vector<std::string> accepted;
  http_result full;
  int n = 0;
  for (; n < 4000; ++n) {  // 16 MB hold about 500 of these messages
    auto r = post(http, n);
    if (r.status == 202) {
      accepted.push_back(member(parse(r.body), "id"));
      continue;
    }
    full = r;
    // Bellhop refuses ahead of maxmemory once its poll of used_memory (every 250 ms) sees it
    // over 90%; messages posted faster than that can first meet Redis's own OOM, which is
    // answered alike (503 redis_full, nothing stored), and memory a command held only while it
    // ran may leave room for more. Fill on until Bellhop holds Redis full with its poll at 85%
    // or more (refusing, it goes on until below 85%), not only by its estimate of what was
    // stored since the last poll, which the next poll may find was less (seen as a CI failure).
    if (eventually(
            [&] {
              return metric(port_, "bellhop_redis_full") == 1 &&
                     metric(port_, "bellhop_redis_used_memory_bytes") >= 0.85 * 16777216;
            },
            1s))
      break;
  }
  ASSERT_EQ(full.status, 503) << "posted " << n << ": " << full.body;
  ASSERT_GT(accepted.size(), 10u);
  auto error = parse(full.body);
  ASSERT_TRUE(error.IsObject() && error.HasMember("error")) << full.body;
  EXPECT_EQ(member(error["error"], "code"), "redis_full") << full.body;
  EXPECT_FALSE(full.headers["retry-after"].empty());
  EXPECT_GE(metric(port_, "bellhop_redis_oom_total"), 1);
  EXPECT_EQ(metric(port_, "bellhop_redis_full"), 1);
  // Refused ahead of maxmemory, so AI engines can still take (BLMOVE) and heartbeat (SET),
  // which Redis refuses at 100%.
  EXPECT_LT(metric(port_, "bellhop_redis_used_memory_bytes"), 16777216);
  // Still full: still refused, and nothing was stored for the refused ones.
  EXPECT_EQ(post(http, n + 1).status, 503);
  EXPECT_EQ(member(parse(post(http, n + 2).body)["error"], "code"), "redis_full");

  // Nothing accepted was lost: every accepted message is in inbound:messages, once.
  const auto queued = split_lines(cli("LRANGE inbound:messages 0 -1"));
  ASSERT_EQ(queued.size(), accepted.size());
  std::set<std::string> ids;
  for (const auto& element : queued) ids.insert(member(parse(element), "id"));
  EXPECT_EQ(ids, std::set<std::string>(accepted.begin(), accepted.end()));

  // An AI engine (the Python example, as the engine user) takes and acks them all.
  child_process consumer(
      {"/usr/bin/python3", (examples_dir / "python" / "consumer.py").string(), "--redis",
       engine_url(), "--consumer", "py-full", "--count", std::to_string(accepted.size())},
      dir_.path() / "py-full.log");
  ASSERT_EQ(consumer.wait(60s), 0) << consumer.output();
  EXPECT_EQ(cli("LLEN inbound:messages"), "0");
  std::set<std::string> taken;
  for (const auto& line : split_lines(consumer.output())) {
    if (line.rfind("{", 0) == 0) taken.insert(member(parse(line), "id"));
  }
  EXPECT_EQ(taken, ids);

  // Memory freed: once Bellhop has seen Redis below 85% (its next poll), accepted again, and the
  // Node example (engine user) answers it.
  ASSERT_TRUE(eventually([&] { return metric(port_, "bellhop_redis_full") == 0; }))
      << metric(port_, "bellhop_redis_used_memory_bytes");
  auto again = post(http, n + 3);
  ASSERT_EQ(again.status, 202) << again.body;
  ASSERT_TRUE(fs::exists(examples_dir / "node" / "node_modules" / "ioredis"))
      << "ioredis is not installed: run `npm ci --no-audit --no-fund` in examples/node";
  child_process node({"node", (examples_dir / "node" / "consumer.js").string(), "--redis",
                      engine_url(), "--consumer", "node-full", "--count", "1", "--reply"},
                     dir_.path() / "node-full.log");
  ASSERT_EQ(node.wait(30s), 0) << node.output();
  EXPECT_EQ(node.output().find("NOPERM"), std::string::npos) << node.output();
  const auto reply = parse(cli("LINDEX outbound:whatsapp 0"));
  EXPECT_EQ(member(reply, "reply_to"), member(parse(again.body), "id"));

  bellhop_.signal(SIGTERM);
  EXPECT_EQ(bellhop_.wait(20s), 0) << bellhop_.output();
}

}  // namespace
}  // namespace bellhop::test
