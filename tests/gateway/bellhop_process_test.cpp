// End-to-end tests of the bellhop binary: real processes, real redis-server, real sockets.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <regex>

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

using namespace std::chrono_literals;

class BellhopProcess : public ::testing::Test {
 protected:
  // Starts `bellhop serve` with a config file holding `config_json` (its listen and data_dir
  // are filled in unless given).
  child_process start(const std::string& extra_config = "", std::vector<std::string> args = {}) {
    port_ = free_port();
    const auto config = dir_.path() / "config.json";
    std::ofstream(config) << "{\n  // test config\n  \"listen\": \"127.0.0.1:" << port_
                          << "\",\n  \"data_dir\": \"" << data_dir().string() << "\",\n"
                          << "  \"shutdown_timeout_ms\": 5000,\n" << extra_config << "}\n";
    std::vector<std::string> argv = {BELLHOP_BINARY, "serve", "--config", config.string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return child_process(argv, dir_.path() / ("bellhop-" + std::to_string(++runs_) + ".log"));
  }

  std::string embedded_config() {
    embedded_port_ = free_port();
    return "  \"redis\": {\"url\": \"embedded\", \"embedded\": {\"port\": " +
           std::to_string(embedded_port_) + "}},\n";
  }

  bool ready() { return http_get(port_, "/readyz").status == 200; }

  std::filesystem::path data_dir() const { return dir_.path() / "data"; }

  // The redis-server children of a bellhop process.
  std::vector<int> redis_children(child_process& bellhop) {
    return children_of(bellhop.pid(), "redis-server");
  }

  // Runs a bellhop command to completion and returns {exit status, output}.
  std::pair<int, std::string> run(std::vector<std::string> args) {
    std::vector<std::string> argv = {BELLHOP_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    child_process p(argv, dir_.path() / ("cmd-" + std::to_string(++runs_) + ".log"));
    auto status = p.wait(20s);
    return {status.value_or(-1), p.output()};
  }

  temp_dir dir_;
  std::uint16_t port_ = 0;
  std::uint16_t embedded_port_ = 0;
  int runs_ = 0;
};

TEST_F(BellhopProcess, EmbeddedRedisReadyRestartedAfterKillAndStoppedOnSigterm) {
  auto bellhop = start(embedded_config());
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  EXPECT_EQ(http_get(port_, "/livez").status, 200);

  auto children = redis_children(bellhop);
  ASSERT_EQ(children.size(), 1u) << bellhop.output();
  const int first = children[0];

  // kill -9 of the Redis child: bellhop restarts it and becomes ready again.
  ::kill(first, SIGKILL);
  ASSERT_TRUE(eventually(
      [&] {
        auto now = redis_children(bellhop);
        return now.size() == 1 && now[0] != first && ready();
      },
      20s))
      << bellhop.output();
  auto metrics = http_get(port_, "/metrics");
  EXPECT_NE(metrics.body.find("bellhop_embedded_redis_restarts_total 1"), std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("bellhop_redis_up 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("bellhop_http_requests_total{route=\"/readyz\""), std::string::npos);

  // SIGTERM: exit 0 and no redis-server left behind.
  const int second = redis_children(bellhop).at(0);
  bellhop.signal(SIGTERM);
  auto status = bellhop.wait(20s);
  ASSERT_TRUE(status.has_value()) << "bellhop did not exit on SIGTERM";
  EXPECT_EQ(*status, 0) << bellhop.output();
  EXPECT_FALSE(process_alive(second)) << "redis-server " << second << " left behind";
}

TEST_F(BellhopProcess, DataSurvivesARestartOfBellhop) {
  auto bellhop = start(embedded_config());
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  // The embedded Redis is reachable by an AI engine on this host with the generated password.
  std::ifstream pw_file(data_dir() / "redis.password");
  std::string password;
  std::getline(pw_file, password);
  ASSERT_FALSE(password.empty());
  const std::string cli = "redis-cli --no-auth-warning -s '" + (data_dir() / "redis.sock").string() +
                          "' -a '" + password + "' ";
  ASSERT_EQ(std::system((cli + "LPUSH inbound:messages survivor >/dev/null").c_str()), 0);
  bellhop.signal(SIGTERM);
  ASSERT_EQ(bellhop.wait(20s), std::optional<int>(0)) << bellhop.output();

  auto again = start(embedded_config());
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << again.output();
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(
      ::popen((cli + "LRANGE inbound:messages 0 -1").c_str(), "r"), ::pclose);
  char buf[256] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, pipe.get()), nullptr);
  EXPECT_EQ(std::string(buf), "survivor\n");
}

// After a SIGKILL of bellhop its Redis child gets SIGTERM and shuts down, which takes a moment;
// a bellhop restarted at once (systemd does) must wait for it rather than fail on the port in
// use, or start a second Redis on the same files: the child keeps the data dir's lock.
TEST_F(BellhopProcess, RestartedAtOnceAfterSigkillWaitsForTheOldRedis) {
  const auto redis_config = embedded_config();
  auto bellhop = start(redis_config);
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  std::ifstream pw_file(data_dir() / "redis.password");
  std::string password;
  std::getline(pw_file, password);
  const std::string cli = "redis-cli --no-auth-warning -s '" +
                          (data_dir() / "redis.sock").string() + "' -a '" + password + "' ";
  ASSERT_EQ(std::system((cli + "LPUSH inbound:messages survivor >/dev/null").c_str()), 0);

  // The old Redis is held stopped while bellhop is killed and started again, so its shutdown
  // is still to come when the new bellhop starts: a slow shutdown, made certain. This test
  // process adopts it when bellhop dies (a subreaper in the same session), or the kernel would
  // wake it at once (SIGCONT to a stopped process group that has just been orphaned).
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const int old_redis = redis_children(bellhop).at(0);
  ::kill(old_redis, SIGSTOP);
  ASSERT_TRUE(eventually(
      [&] {
        std::ifstream status("/proc/" + std::to_string(old_redis) + "/status");
        std::string line;
        while (std::getline(status, line))
          if (line.rfind("State:", 0) == 0) return line.find('T') != std::string::npos;
        return false;
      },
      10s));
  bellhop.signal(SIGKILL);
  bellhop.wait(20s);
  bellhop = start(redis_config);  // at once, same data dir and port
  ASSERT_TRUE(eventually(
      [&] { return bellhop.output().find("to exit") != std::string::npos || !bellhop.running(); },
      20s))
      << bellhop.output();
  EXPECT_TRUE(bellhop.running()) << bellhop.output();
  ::kill(old_redis, SIGCONT);
  int status = 0;
  EXPECT_EQ(::waitpid(old_redis, &status, 0), old_redis);  // it finishes its shutdown
  ASSERT_TRUE(eventually([&] { return ready(); }, 30s)) << bellhop.output();
  EXPECT_EQ(redis_children(bellhop).size(), 1u);

  for (int round = 0; round < 3; ++round) {  // and a few plain ones
    bellhop.signal(SIGKILL);
    bellhop.wait(20s);
    bellhop = start(redis_config);
    ASSERT_TRUE(eventually([&] { return ready(); }, 30s))
        << "round " << round << ": " << bellhop.output();
    EXPECT_EQ(redis_children(bellhop).size(), 1u);
  }
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(
      ::popen((cli + "LRANGE inbound:messages 0 -1").c_str(), "r"), ::pclose);
  char buf[256] = {};
  ASSERT_NE(std::fgets(buf, sizeof buf, pipe.get()), nullptr);
  EXPECT_EQ(std::string(buf), "survivor\n");
}

TEST_F(BellhopProcess, ExternalRedisDownMeans503ThenRecoversWithoutRestart) {
  redis_server redis("ext-pass");
  auto bellhop = start("  \"redis\": {\"url\": \"" + redis.url() +
                       "\", \"command_timeout_ms\": 1000},\n");
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  redis.stop();
  ASSERT_TRUE(eventually([&] { return http_get(port_, "/readyz").status == 503; }, 10s));
  auto r = http_get(port_, "/readyz");
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_NE(r.body.find("\"code\":\"redis_unavailable\""), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("ext-pass"), std::string::npos) << "password leaked: " << r.body;
  EXPECT_EQ(http_get(port_, "/livez").status, 200);
  redis.start();
  EXPECT_TRUE(eventually([&] { return ready(); }, 15s)) << bellhop.output();
  EXPECT_EQ(bellhop.output().find("ext-pass"), std::string::npos) << "password in the log";
}

TEST_F(BellhopProcess, FrozenRedisMakesReadyzFailInsteadOfHanging) {
  redis_server redis;
  auto bellhop = start("  \"redis\": {\"url\": \"" + redis.url() +
                       "\", \"command_timeout_ms\": 500},\n");
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  redis.freeze();
  auto r = http_get(port_, "/readyz");
  redis.thaw();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("timed out"), std::string::npos) << r.body;
  EXPECT_TRUE(eventually([&] { return ready(); }, 10s));
}

TEST_F(BellhopProcess, WrongTypeInConfigNamesTheKey) {
  auto bellhop = start("  \"http\": {\"max_body_bytes\": \"lots\"},\n");
  auto status = bellhop.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(bellhop.output().find("http.max_body_bytes"), std::string::npos) << bellhop.output();
}

TEST_F(BellhopProcess, UnknownKeyInConfigNamesTheKey) {
  auto bellhop = start("  \"redis\": {\"urll\": \"embedded\"},\n");
  auto status = bellhop.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(bellhop.output().find("redis.urll"), std::string::npos) << bellhop.output();
  // check-config says the same without starting anything.
  auto [code, out] = run({"check-config", "--config", (dir_.path() / "config.json").string()});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("redis.urll"), std::string::npos) << out;
}

TEST_F(BellhopProcess, CheckConfigNamesAMissingPropertyAndWhereItIsNamed) {
  const auto file = dir_.path() / "properties.json";
  const std::string properties =
      R"("properties": [{"id": "hotel-berlin", "time_zone": "Europe/Berlin",
                         "quiet_hours": {"start": "22:00", "end": "07:00"}}],)";
  std::ofstream(file) << "{" << properties
                      << R"("channels": {"webchat": {"property_id": "hotel-paris"}}})";
  auto [code, out] = run({"check-config", "--config", file.string()});
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("'channels.webchat.property_id' names property 'hotel-paris', which is not "
                     "in the properties section"),
            std::string::npos)
      << out;
  // Declared, it passes; without the section, any id passes (an implicit property).
  std::ofstream(file) << "{" << properties
                      << R"("channels": {"webchat": {"property_id": "hotel-berlin"}}})";
  auto [ok, ok_out] = run({"check-config", "--config", file.string()});
  EXPECT_EQ(ok, 0) << ok_out;
  std::ofstream(file) << R"({"channels": {"webchat": {"property_id": "hotel-paris"}}})";
  auto [implicit, implicit_out] = run({"check-config", "--config", file.string()});
  EXPECT_EQ(implicit, 0) << implicit_out;
  // A time zone the tz database does not know is one line naming the key.
  std::ofstream(file) << R"({"properties": [{"id": "h", "time_zone": "Mars/Olympus_Mons"}]})";
  auto [zone, zone_out] = run({"check-config", "--config", file.string()});
  EXPECT_NE(zone, 0);
  EXPECT_NE(zone_out.find("'properties[0].time_zone' is not a time zone of the tz database"),
            std::string::npos)
      << zone_out;
}

// SIGHUP (what `systemctl reload` sends) never stops bellhop: the config is checked again and
// the answer is one log line; the running config stays.
TEST_F(BellhopProcess, SighupChecksTheConfigAndKeepsRunning) {
  redis_server redis;
  const std::string redis_part = "  \"redis\": {\"url\": \"" + redis.url() + "\"},\n";
  auto bellhop = start(redis_part);
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  const auto config = dir_.path() / "config.json";
  auto rewrite = [&](const std::string& extra) {
    std::ofstream(config) << "{\n  \"listen\": \"127.0.0.1:" << port_ << "\",\n  \"data_dir\": \""
                          << data_dir().string() << "\",\n  \"shutdown_timeout_ms\": 5000,\n"
                          << redis_part << extra << "}\n";
  };
  bellhop.signal(SIGHUP);  // unchanged
  ASSERT_TRUE(eventually([&] {
    return bellhop.output().find("SIGHUP: the config is valid and changes nothing") !=
           std::string::npos;
  })) << bellhop.output();

  rewrite(R"(  "properties": [{"id": "hotel-a", "time_zone": "Europe/Berln"}],)"
          "\n");
  bellhop.signal(SIGHUP);  // invalid: named, and the running config stays
  ASSERT_TRUE(eventually([&] {
    return bellhop.output().find("SIGHUP: the config is not valid, the running one stays") !=
           std::string::npos;
  })) << bellhop.output();
  EXPECT_NE(bellhop.output().find("'properties[0].time_zone'"), std::string::npos)
      << bellhop.output();

  rewrite(R"(  "properties": [{"id": "hotel-a", "time_zone": "Europe/Berlin"}],)"
          "\n");
  bellhop.signal(SIGHUP);  // valid, with a change that needs a restart
  ASSERT_TRUE(eventually([&] {
    return bellhop.output().find("properties changed, which bellhop reads at start only") !=
           std::string::npos;
  })) << bellhop.output();
  EXPECT_TRUE(bellhop.running());
  EXPECT_TRUE(ready());
  bellhop.signal(SIGTERM);
  EXPECT_EQ(bellhop.wait(20s), 0) << bellhop.output();
}

// An escalation contact whose channel this gateway does not send on, or on which the property
// has no account, is never notified: check-config warns (the config is still valid).
TEST_F(BellhopProcess, CheckConfigWarnsWhenAnEscalationContactCannotBeReached) {
  const auto file = dir_.path() / "escalation.json";
  const auto write = [&](const std::string& twilio_property) {
    std::ofstream(file) << R"({"public_url": "https://gw.example-hotels.com",
      "properties": [
        {"id": "hotel-berlin", "time_zone": "Europe/Berlin",
         "escalation": {"after_s": 120, "sms": "+4930999999", "email": "duty@hotel-berlin.example"}},
        {"id": "hotel-paris", "time_zone": "Europe/Paris"}],
      "channels": {"twilio": {"account_sid": "AC1", "auth_token": "twilio-token-0123",
                              "from": "+15550001111", "property_id": ")"
                        << twilio_property << R"("}}})";
  };
  write("hotel-paris");
  auto [code, out] = run({"check-config", "--config", file.string()});
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("warning: properties[0].escalation.email is set but channels.email is not "
                     "configured"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("warning: properties[0].escalation.sms is set but no account of "
                     "channels.twilio belongs to 'hotel-berlin'"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("config OK"), std::string::npos) << out;
  // The Twilio number is hotel-berlin's: the SMS can go, only the email warning is left.
  write("hotel-berlin");
  auto [ok, ok_out] = run({"check-config", "--config", file.string()});
  EXPECT_EQ(ok, 0) << ok_out;
  EXPECT_EQ(ok_out.find("escalation.sms"), std::string::npos) << ok_out;
  EXPECT_NE(ok_out.find("escalation.email"), std::string::npos) << ok_out;
}

TEST_F(BellhopProcess, PortInUseIsOneClearLine) {
  // Hold the port bellhop will be told to use.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const auto busy = free_port();
  addr.sin_port = htons(busy);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  auto bellhop = start(embedded_config(), {"--listen", "127.0.0.1:" + std::to_string(busy)});
  auto status = bellhop.wait(15s);
  ::close(fd);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  auto out = bellhop.output();
  std::smatch m;
  EXPECT_TRUE(std::regex_search(out, m, std::regex("bellhop: .*127\\.0\\.0\\.1:" +
                                                   std::to_string(busy) + ".*in use")))
      << out;
  // redis-server retitles itself "redis-server 127.0.0.1:<port>".
  EXPECT_TRUE(find_processes("127.0.0.1:" + std::to_string(embedded_port_)).empty())
      << "a redis-server was left behind";
}

TEST_F(BellhopProcess, MissingRedisServerBinaryIsOneClearLine) {
  auto bellhop = start(
      "  \"redis\": {\"embedded\": {\"redis_server\": \"/nonexistent/redis-server\"}},\n");
  auto status = bellhop.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(bellhop.output().find("redis-server not found"), std::string::npos)
      << bellhop.output();
}

TEST_F(BellhopProcess, UnwritableDataDirIsOneClearLine) {
  std::ofstream(dir_.path() / "a-file") << "x";
  auto bellhop = start(embedded_config(),
                       {"--data-dir", (dir_.path() / "a-file" / "data").string()});
  auto status = bellhop.wait(10s);
  ASSERT_TRUE(status.has_value());
  EXPECT_NE(*status, 0);
  EXPECT_NE(bellhop.output().find("not writable"), std::string::npos) << bellhop.output();
}

TEST_F(BellhopProcess, FlagsOverrideEnvironmentOverrideFile) {
  redis_server redis;
  // The file says embedded, the environment says this Redis, the flag says the port.
  const auto flag_port = free_port();
  port_ = free_port();
  const auto config = dir_.path() / "config.json";
  std::ofstream(config) << R"({"listen": "127.0.0.1:)" << port_ << R"(", "data_dir": ")"
                        << data_dir().string() << R"("})";
  child_process bellhop({BELLHOP_BINARY, "--config", config.string(), "--listen",
                         "127.0.0.1:" + std::to_string(flag_port)},
                        dir_.path() / "prec.log", {{"BELLHOP_REDIS_URL", redis.url()}});
  port_ = flag_port;
  ASSERT_TRUE(eventually([&] { return ready(); }, 20s)) << bellhop.output();
  EXPECT_TRUE(redis_children(bellhop).empty())
      << "BELLHOP_REDIS_URL should have replaced embedded";
}

TEST_F(BellhopProcess, GenConfigWritesSecretsOnceWithMode0600) {
  const auto file = dir_.path() / "generated.json";
  auto [code, out] = run({"gen-config", "--output", file.string(), "--data-dir",
                          data_dir().string(), "--listen", "127.0.0.1:9999"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::ifstream in(file);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(out.find("jwt_secret"), std::string::npos) << "secrets must not be printed";
  auto [again, again_out] = run({"gen-config", "--output", file.string()});
  EXPECT_NE(again, 0) << "must refuse to overwrite";
  std::ifstream in2(file);
  std::string text2((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, text2);
  auto [check, check_out] = run({"check-config", "--config", file.string()});
  EXPECT_EQ(check, 0) << check_out;
  // No channel is configured yet: check-config says which webhooks are refused, and why.
  for (const char* channel : {"whatsapp", "twilio", "email"}) {
    EXPECT_NE(check_out.find(std::string("warning: channels.") + channel +
                             " is not configured (no secret to verify its webhooks)"),
              std::string::npos)
        << check_out;
  }
  EXPECT_NE(check_out.find("POST /v1/webhooks/email answer 404 not_configured"), std::string::npos)
      << check_out;
}

TEST_F(BellhopProcess, VersionAndUsageErrors) {
  auto [code, out] = run({"version"});
  EXPECT_EQ(code, 0);
  EXPECT_TRUE(out.starts_with("bellhop ")) << out;
  auto [bad, bad_out] = run({"frobnicate"});
  EXPECT_NE(bad, 0);
  auto [missing, missing_out] = run({"serve", "--config", "/nonexistent/bellhop.json"});
  EXPECT_NE(missing, 0);
  EXPECT_NE(missing_out.find("/nonexistent/bellhop.json"), std::string::npos) << missing_out;
}

}  // namespace
}  // namespace bellhop::test
