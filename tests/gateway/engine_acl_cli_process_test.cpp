// `bellhop engine-acl`: the ACL SETUSER line for an external Redis, applied to a real
// redis-server, gives the same `engine` user as the embedded Redis has, with the configured
// key prefix, and prints no password.
#include <gtest/gtest.h>

#include <fstream>

#include "support/process.hpp"
#include "support/redis_server.hpp"

namespace bellhop::test {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

TEST(EngineAclCli, ThePrintedLineCreatesTheEngineUserOnAnExternalRedis) {
  temp_dir dir;
  redis_server redis("admin-password");
  const auto config = dir.path() / "config.json";
  std::ofstream(config) << R"({"redis": {"url": ")" << redis.url()
                        << R"(", "key_prefix": "hotel:"}})";
  const std::string engine_password = "engine-password-0123456789abcdef";
  const auto password_file = dir.path() / "engine.password";
  std::ofstream(password_file) << engine_password << "\n";

  const auto line = run_capture(std::string(BELLHOP_BINARY) + " engine-acl --config " +
                                config.string() + " --password-file " + password_file.string());
  ASSERT_EQ(line.rfind("ACL SETUSER engine reset on #", 0), 0u) << line;
  EXPECT_EQ(line.find(engine_password), std::string::npos) << "only its SHA-256";
  EXPECT_NE(line.find("%W~hotel:outbound:*"), std::string::npos) << line;
  // Without a password file: a placeholder.
  EXPECT_NE(run_capture(std::string(BELLHOP_BINARY) + " engine-acl --config " + config.string())
                .find(" on >CHANGE-ME "),
            std::string::npos);

  ASSERT_EQ(
      run_capture("printf '%s\\n' " + shell_quote(line) + " | redis-cli --no-auth-warning -p " +
                  std::to_string(redis.port()) + " -a admin-password"),
      "OK");
  auto engine = [&](const std::string& args) {
    return run_capture("redis-cli --no-auth-warning -p " + std::to_string(redis.port()) +
                           " --user engine -a " + engine_password + " " + args,
                       true);
  };
  redis.cli("LPUSH hotel:inbound:messages m1");
  EXPECT_EQ(engine("SET hotel:inbound:messages:heartbeat:e1 alive PX 30000"), "OK");
  EXPECT_EQ(
      engine("BLMOVE hotel:inbound:messages hotel:inbound:messages:processing:e1 RIGHT LEFT 1"),
      "m1");
  EXPECT_EQ(engine("LREM hotel:inbound:messages:processing:e1 1 m1"), "1");
  EXPECT_EQ(engine("FLUSHALL").rfind("NOPERM", 0), 0u);
  EXPECT_EQ(engine("LPUSH hotel:inbound:messages forged").rfind("NOPERM", 0), 0u);
  EXPECT_EQ(engine("SET inbound:messages:heartbeat:e1 alive").rfind("NOPERM", 0), 0u);
}

}  // namespace
}  // namespace bellhop::test
