// GET /metrics protected by metrics.token or moved to metrics.listen, against a real bellhop;
// check-config warns when /metrics would be open on a public address.
#include <gtest/gtest.h>

#include <fstream>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

const std::string metrics_token = "metrics-token-0123456789abcdef";

class MetricsProtection : public ::testing::Test {
 protected:
  std::filesystem::path write_config(const std::string& listen, const std::string& metrics) {
    const auto config = dir_.path() / ("config-" + std::to_string(++runs_) + ".json");
    std::ofstream(config) << R"({
      "listen": ")" << listen
                          << R"(",
      "data_dir": ")" << (dir_.path() / "data").string()
                          << R"(",
      "redis": {"url": ")" << redis_.url()
                          << R"("},
      "metrics": )" << metrics
                          << R"(,
      "auth": {"adapter_keys": [{"name": "all", "key": "metrics-test-key-0123456789", "properties": ["*"]}]}
    })";
    return config;
  }

  child_process start(const std::string& metrics) {
    port_ = free_port();
    const auto config = write_config("127.0.0.1:" + std::to_string(port_), metrics);
    child_process p({BELLHOP_BINARY, "serve", "--config", config.string()},
                    dir_.path() / ("bellhop-" + std::to_string(runs_) + ".log"));
    EXPECT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 200; }, 20s))
        << p.output();
    return p;
  }

  std::string check_config(const std::string& listen, const std::string& metrics) {
    const auto config = write_config(listen, metrics);
    return run_capture(
        std::string(BELLHOP_BINARY) + " check-config --config '" + config.string() + "'", true);
  }

  temp_dir dir_;
  redis_server redis_;
  std::uint16_t port_ = 0;
  int runs_ = 0;
};

TEST_F(MetricsProtection, ATokenIsNeededWhenConfigured) {
  auto bellhop = start(R"({"token": ")" + metrics_token + R"("})");
  const auto none = http_get(port_, "/metrics");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("\"code\":\"unauthorized\""), std::string::npos) << none.body;
  EXPECT_EQ(none.body.find("bellhop_"), std::string::npos);
  EXPECT_EQ(none.headers.count("www-authenticate"), 1u);
  const auto wrong = http_request(port_, "GET", "/metrics", "",
                                  {{"Authorization", "Bearer " + metrics_token + "x"}});
  EXPECT_EQ(wrong.status, 401);
  const auto other_scheme =
      http_request(port_, "GET", "/metrics", "", {{"Authorization", "Basic " + metrics_token}});
  EXPECT_EQ(other_scheme.status, 401);
  const auto right =
      http_request(port_, "GET", "/metrics", "", {{"Authorization", "Bearer " + metrics_token}});
  EXPECT_EQ(right.status, 200);
  EXPECT_NE(right.body.find("bellhop_build_info"), std::string::npos);
}

TEST_F(MetricsProtection, WithoutATokenMetricsAreOpenAsBefore) {
  auto bellhop = start("{}");
  EXPECT_EQ(http_get(port_, "/metrics").status, 200);
}

TEST_F(MetricsProtection, ASeparateListenerServesOnlyMetricsAndTheMainOneNoLonger) {
  const auto metrics_port = free_port();
  auto bellhop = start(R"({"listen": "127.0.0.1:)" + std::to_string(metrics_port) + R"("})");
  EXPECT_EQ(http_get(port_, "/metrics").status, 404);
  const auto there = http_get(metrics_port, "/metrics");
  EXPECT_EQ(there.status, 200) << bellhop.output();
  EXPECT_NE(there.body.find("bellhop_build_info"), std::string::npos);
  EXPECT_EQ(http_get(metrics_port, "/livez").status, 404);
  EXPECT_EQ(http_get(metrics_port, "/v1/messages/x").status, 404);
}

TEST_F(MetricsProtection, ASeparateListenerTakesTheTokenToo) {
  const auto metrics_port = free_port();
  auto bellhop = start(R"({"listen": "127.0.0.1:)" + std::to_string(metrics_port) +
                       R"(", "token": ")" + metrics_token + R"("})");
  EXPECT_EQ(http_get(metrics_port, "/metrics").status, 401);
  EXPECT_EQ(http_request(metrics_port, "GET", "/metrics", "",
                         {{"Authorization", "Bearer " + metrics_token}})
                .status,
            200);
}

TEST_F(MetricsProtection, CheckConfigWarnsWhenMetricsAreOpenOnAPublicAddress) {
  const auto open = check_config("0.0.0.0:8080", "{}");
  EXPECT_NE(open.find("metrics.token is empty"), std::string::npos) << open;
  EXPECT_NE(open.find("config OK"), std::string::npos) << open;
  for (const auto& [listen, metrics] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1:8080", "{}"},
           {"[::1]:8080", "{}"},
           {"0.0.0.0:8080", R"({"token": ")" + metrics_token + R"("})"},
           {"0.0.0.0:8080", R"({"listen": "127.0.0.1:9464"})"}}) {
    const auto out = check_config(listen, metrics);
    EXPECT_EQ(out.find("metrics.token is empty"), std::string::npos)
        << listen << " " << metrics << "\n"
        << out;
  }
  const auto moved_public = check_config("127.0.0.1:8080", R"({"listen": ":9464"})");
  EXPECT_NE(moved_public.find("metrics.listen"), std::string::npos) << moved_public;
  const auto short_token = check_config("127.0.0.1:8080", R"({"token": "short"})");
  EXPECT_NE(short_token.find("metrics.token"), std::string::npos) << short_token;
  EXPECT_EQ(short_token.find("config OK"), std::string::npos) << short_token;
}

}  // namespace
}  // namespace bellhop::test
