// An AI-engine consumer is SIGKILLed holding 100 messages: a real `bellhop serve` (embedded
// Redis) gives them to the next consumer after the visibility timeout, none lost or repeated.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>

#include <fstream>
#include <regex>

#include "support/http_client.hpp"
#include "support/process.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string adapter_key = "consumer-crash-test-key-0123456789";

// A consumer as an AI engine written with nothing but redis-cli would be: heartbeat before
// every take, BLMOVE 100 messages, never ack, keep the heartbeat alive.
const std::string consumer_script = R"(
cli() { redis-cli -s "$SOCK" "$@"; }
beat() {
  cli SET "inbound:messages:heartbeat:$NAME" alive PX 1000 >/dev/null
  cli SADD inbound:messages:consumers "$NAME" >/dev/null
}
n=0
while [ "$n" -lt 100 ]; do
  beat
  m=$(cli BLMOVE inbound:messages "inbound:messages:processing:$NAME" RIGHT LEFT 0.5)
  if [ -n "$m" ]; then n=$((n+1)); fi
done
echo "took $n"
while true; do beat; sleep 0.2; done
)";

class ConsumerCrash : public ::testing::Test {
 protected:
  child_process start_bellhop() {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << R"({
      "listen": "127.0.0.1:)"
                          << port_ << R"(",
      "data_dir": ")" << data_dir().string()
                          << R"(",
      "redis": {"url": "embedded", "embedded": {"port": )"
                          << free_port() << R"(}},
      "inbound": {"visibility_timeout_ms": 1000, "reaper_interval_ms": 200},
      "auth": {"adapter_keys": [{"name": "test", "key": ")"
                          << adapter_key << R"(",
                                 "properties": ["*"]}]}
    })";
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / "bellhop.log");
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    std::ifstream pw(data_dir() / "redis.password");
    std::getline(pw, password_);
    return p;
  }

  child_process start_consumer(const std::string& name) {
    return child_process({"bash", "-c", consumer_script}, dir_.path() / (name + ".log"),
                         {{"SOCK", (data_dir() / "redis.sock").string()},
                          {"REDISCLI_AUTH", password_},
                          {"NAME", name}});
  }

  std::string cli(const std::string& args) {
    return run_capture("REDISCLI_AUTH='" + password_ + "' redis-cli -s '" +
                       (data_dir() / "redis.sock").string() + "' " + args);
  }
  long llen(const std::string& key) { return std::stol(cli("LLEN " + key)); }

  // A sample of GET /metrics, or -1.
  double metric(const std::string& name) {
    const auto body = http_get(port_, "/metrics").body;
    std::smatch m;
    if (!std::regex_search(body, m, std::regex("\n" + name + " ([0-9.e+]+)"))) return -1;
    return std::stod(m[1]);
  }

  // Envelope ids of a list in the order consumers take them (right end first).
  std::vector<std::string> ids_in_take_order(const std::string& key) {
    std::vector<std::string> ids;
    const auto raw = cli("LRANGE " + key + " 0 -1");
    std::size_t start = 0;
    while (start < raw.size()) {
      auto end = raw.find('\n', start);
      if (end == std::string::npos) end = raw.size();
      rapidjson::Document d;
      d.Parse(raw.substr(start, end - start).c_str());
      ids.push_back(d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString()
                                                                            : "(invalid)");
      start = end + 1;
    }
    return {ids.rbegin(), ids.rend()};
  }

  std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::string password_;
};

TEST_F(ConsumerCrash, KilledConsumersMessagesGoToTheNextConsumerNoneLost) {
  auto bellhop = start_bellhop();
  ASSERT_FALSE(password_.empty());

  std::vector<std::string> sent;  // ids in arrival order
  for (int i = 0; i < 100; ++i) {
    auto r = http_request(
        port_, "POST", "/v1/messages/inbound",
        R"({"property_id":"hotel-crash","channel":"sms","external_id":"sms-)" + std::to_string(i) +
            R"(","from":"+4915100)" + std::to_string(i % 5) + R"(","text":"hello )" +
            std::to_string(i) + "\"}",
        {{"Authorization", "Bearer " + adapter_key}, {"Content-Type", "application/json"}});
    ASSERT_EQ(r.status, 202) << r.body;
    rapidjson::Document d;
    d.Parse(r.body.c_str());
    ASSERT_TRUE(d.IsObject() && d.HasMember("id") && d["id"].IsString()) << r.body;
    sent.push_back(d["id"].GetString());
  }
  ASSERT_EQ(llen("inbound:messages"), 100);

  auto first = start_consumer("first");
  ASSERT_TRUE(eventually([&] { return first.output().find("took 100") != std::string::npos; }, 30s))
      << first.output();
  EXPECT_EQ(llen("inbound:messages:processing:first"), 100);
  // While it heartbeats, the reaper sees its messages in flight and leaves them alone, pass
  // after pass (10 passes at 200 ms = two visibility timeouts).
  ASSERT_TRUE(eventually([&] { return metric("bellhop_inbound_in_flight") == 100; }))
      << bellhop.output();
  const double runs = metric("bellhop_inbound_reaper_runs_total");
  ASSERT_TRUE(eventually([&] { return metric("bellhop_inbound_reaper_runs_total") >= runs + 10; }));
  EXPECT_EQ(llen("inbound:messages:processing:first"), 100);
  EXPECT_EQ(llen("inbound:messages"), 0);

  ::kill(-first.pid(), SIGKILL);  // the whole consumer: bash, redis-cli, sleep
  ASSERT_TRUE(first.wait(5s).has_value());
  auto second = start_consumer("second");
  ASSERT_TRUE(
      eventually([&] { return second.output().find("took 100") != std::string::npos; }, 30s))
      << second.output() << bellhop.output();

  // Every message, once, in the order it arrived.
  EXPECT_EQ(ids_in_take_order("inbound:messages:processing:second"), sent);
  EXPECT_EQ(llen("inbound:messages:processing:first"), 0);
  EXPECT_EQ(llen("inbound:messages"), 0);
  EXPECT_EQ(llen("inbound:messages:dead"), 0);
  EXPECT_EQ(cli("HLEN inbound:messages:deliveries"), "100");
  EXPECT_EQ(metric("bellhop_inbound_redeliveries_total"), 100);
  ::kill(-second.pid(), SIGKILL);
}

}  // namespace
}  // namespace bellhop::test
