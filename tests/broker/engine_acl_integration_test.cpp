// The embedded Redis's `engine` ACL user against a real redis-server: the consumer loop of
// docs/ai-engine.md works with the password from <data_dir>/engine.password, and everything
// else (admin commands, keys outside the contract, writing to the queue) is refused.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include "bellhop/broker/embedded_redis.hpp"
#include "support/process.hpp"

namespace bellhop::broker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_password(const fs::path& p) {
  std::ifstream in(p);
  std::string s;
  in >> s;
  return s;
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

bool refused(const std::string& answer) {
  return answer.rfind("NOPERM", 0) == 0 || answer.rfind("ERR", 0) == 0;
}

class engine_acl_test : public ::testing::Test {
 protected:
  void start(const std::string& prefix) {
    prefix_ = prefix;
    embedded_redis_options o;
    o.data_dir = dir_.path() / "data";
    o.port = test::free_port();
    o.key_prefix = prefix;
    o.maxmemory = "64mb";
    port_ = o.port;
    redis_ = std::make_unique<embedded_redis>(o);
    auto started = redis_->start();
    ASSERT_TRUE(started) << started.error();
    engine_password_ = read_password(redis_->engine_password_file());
    ASSERT_EQ(engine_password_.size(), 64u);
  }

  std::string cli(const std::string& user, const std::string& password, const std::string& args,
                  const std::string& stdin_text = {}) {
    std::string cmd = "redis-cli --no-auth-warning -h 127.0.0.1 -p " + std::to_string(port_) +
                      " --user " + user + " -a " + shell_quote(password) + " " + args;
    if (!stdin_text.empty()) cmd = "printf %s " + shell_quote(stdin_text) + " | " + cmd;
    return test::run_capture(cmd, true);
  }
  // As an AI engine, with keys under the prefix.
  std::string engine(const std::string& args, const std::string& stdin_text = {}) {
    return cli("engine", engine_password_, args, stdin_text);
  }
  // As bellhop (the default user, full access).
  std::string bellhop(const std::string& args) {
    return cli("default", redis_->endpoint().password, args);
  }
  std::string k(const std::string& key) const { return prefix_ + key; }

  // The documented loop: heartbeat, take, reply and ack in MULTI/EXEC, hand back, stop.
  void consumer_loop_works() {
    ASSERT_EQ(bellhop("LPUSH " + k("inbound:messages") + " m1 m2 m3"), "3");
    EXPECT_EQ(engine("SET " + k("inbound:messages:heartbeat:e1") + " alive PX 30000"), "OK");
    EXPECT_EQ(engine("SADD " + k("inbound:messages:consumers") + " e1"), "1");
    EXPECT_EQ(engine("BLMOVE " + k("inbound:messages") + " " + k("inbound:messages:processing:e1") +
                     " RIGHT LEFT 1"),
              "m1");
    EXPECT_EQ(engine("BRPOPLPUSH " + k("inbound:messages") + " " +
                     k("inbound:messages:processing:e1") + " 1"),
              "m2");
    EXPECT_EQ(engine("LPOS " + k("inbound:messages:processing:e1") + " m1"), "1");
    EXPECT_EQ(engine("", "MULTI\nLPUSH " + k("outbound:whatsapp") + " reply-1\nLREM " +
                             k("inbound:messages:processing:e1") + " 1 m1\nEXEC\n"),
              "OK\nQUEUED\nQUEUED\n1\n1");
    EXPECT_EQ(engine("LPUSH " + k("handoff:staff") + " needs-staff"), "1");
    EXPECT_EQ(engine("HDEL " + k("inbound:messages:deliveries") + " m1"), "0");
    // Reusing a name: give back what the processing list holds.
    EXPECT_EQ(engine("LMOVE " + k("inbound:messages:processing:e1") + " " + k("inbound:messages") +
                     " LEFT RIGHT"),
              "m2");
    EXPECT_EQ(engine("DEL " + k("inbound:messages:heartbeat:e1")), "1");
    EXPECT_EQ(engine("PING"), "PONG");

    EXPECT_EQ(bellhop("LRANGE " + k("outbound:whatsapp") + " 0 -1"), "reply-1");
    EXPECT_EQ(bellhop("LRANGE " + k("inbound:messages") + " 0 -1"), "m3\nm2");
    EXPECT_EQ(bellhop("LLEN " + k("inbound:messages:processing:e1")), "0");
  }

  void everything_else_is_refused() {
    bellhop("HSET " + k("message:01JD") + " status queued");
    bellhop("SET " + k("dedup:whatsapp:x") + " 01JD");
    for (const std::string& command :
         {std::string("FLUSHALL"), std::string("FLUSHDB"), std::string("CONFIG GET maxmemory"),
          std::string("CONFIG SET maxmemory 0"), std::string("DEBUG SLEEP 0"),
          std::string("KEYS *"), std::string("SCAN 0"), std::string("INFO"),
          std::string("ACL LIST"), std::string("SHUTDOWN NOSAVE"), std::string("MONITOR"),
          std::string("EVAL \"return 1\" 0"), std::string("SCRIPT LOAD \"return 1\""),
          std::string("FUNCTION LIST"), std::string("SUBSCRIBE " + k("property:p:conversations")),
          std::string("SELECT 1"), std::string("SET foo bar"), std::string("GET foo"),
          "SET " + k("foo") + " bar",
          // Keys of the contract that are Bellhop's alone.
          "HGETALL " + k("message:01JD"), "GET " + k("dedup:whatsapp:x"),
          "DEL " + k("dedup:whatsapp:x"), "LRANGE " + k("inbound:messages") + " 0 -1",
          "LRANGE " + k("outbound:whatsapp") + " 0 -1", "DEL " + k("outbound:whatsapp"),
          "RPOP " + k("outbound:whatsapp"), "LRANGE " + k("inbound:messages:dead") + " 0 -1",
          "SET " + k("inbound:messages:reaper") + " me",
          "XRANGE " + k("property:p:events") + " - +",
          // Writing to the queue: an engine never forges a guest message.
          "LPUSH " + k("inbound:messages") + " forged",
          "RPUSH " + k("inbound:messages") + " forged", "LREM " + k("inbound:messages") + " 0 m3",
          "LMOVE " + k("outbound:whatsapp") + " " + k("inbound:messages") + " LEFT LEFT",
          "DEL " + k("inbound:messages"), "SET " + k("outbound:whatsapp") + " x",
          "SREM " + k("inbound:messages:consumers") + " e1",
          "HSET " + k("inbound:messages:deliveries") + " m1 0",
          "SET " + k("inbound:messages:heartbeat:e1") + " x GET"}) {
      const auto answer = engine(command);
      EXPECT_TRUE(refused(answer)) << command << " -> " << answer;
    }
    EXPECT_EQ(bellhop("LRANGE " + k("inbound:messages") + " 0 -1"), "m3\nm2");
    EXPECT_EQ(bellhop("LLEN " + k("outbound:whatsapp")), "1");
    EXPECT_EQ(bellhop("EXISTS " + k("dedup:whatsapp:x")), "1");
  }

  test::temp_dir dir_;
  std::unique_ptr<embedded_redis> redis_;
  std::uint16_t port_ = 0;
  std::string prefix_;
  std::string engine_password_;
};

TEST_F(engine_acl_test, the_engine_user_runs_the_consumer_loop_and_nothing_else) {
  start("");
  consumer_loop_works();
  everything_else_is_refused();
  EXPECT_TRUE(refused(engine("KEYS *")));
  EXPECT_NE(cli("engine", "wrong-password", "PING").find("WRONGPASS"), std::string::npos);
  EXPECT_NE(cli("engine", redis_->endpoint().password, "PING").find("WRONGPASS"), std::string::npos)
      << "bellhop's password is not the engine's";
}

TEST_F(engine_acl_test, with_a_key_prefix_only_the_prefixed_keys_are_the_engines) {
  start("hotel:");
  consumer_loop_works();
  everything_else_is_refused();
  bellhop("LPUSH inbound:messages other");
  EXPECT_TRUE(
      refused(engine("BLMOVE inbound:messages inbound:messages:processing:e1 RIGHT LEFT 1")));
  EXPECT_TRUE(refused(engine("SET inbound:messages:heartbeat:e1 alive PX 30000")));
  EXPECT_TRUE(refused(engine("LPUSH outbound:whatsapp reply")));
  EXPECT_EQ(bellhop("LLEN inbound:messages"), "1");
}

TEST_F(engine_acl_test, the_engine_password_file_is_private_and_may_be_opened_to_a_group) {
  start("");
  const auto file = redis_->engine_password_file();
  EXPECT_EQ(file, dir_.path() / "data" / "engine.password");
  EXPECT_EQ(file_mode(file), 0600u);
  // The config holds its hash, not the password.
  std::ifstream in(dir_.path() / "data" / "redis.conf");
  std::stringstream config;
  config << in.rdbuf();
  EXPECT_EQ(config.str().find(engine_password_), std::string::npos);
  EXPECT_NE(config.str().find("\nuser engine "), std::string::npos);
  // The startup hint names the user and the file, never the password.
  const auto hint = redis_->connect_hint();
  EXPECT_NE(hint.find("user engine"), std::string::npos) << hint;
  EXPECT_NE(hint.find(file.string()), std::string::npos) << hint;
  EXPECT_EQ(hint.find(engine_password_), std::string::npos) << hint;
  redis_->stop();

  // An operator gives a group of engine users read access: kept. Others: taken away.
  ASSERT_EQ(::chmod(file.c_str(), 0640), 0);
  ASSERT_TRUE(redis_->start());
  EXPECT_EQ(file_mode(file), 0640u);
  EXPECT_EQ(read_password(file), engine_password_) << "generated once, then reused";
  EXPECT_EQ(engine("PING"), "PONG");
  redis_->stop();
  ASSERT_EQ(::chmod(file.c_str(), 0666), 0);
  ASSERT_TRUE(redis_->start());
  EXPECT_EQ(file_mode(file), 0640u);
}

}  // namespace
}  // namespace bellhop::broker
