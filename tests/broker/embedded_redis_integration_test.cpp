#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "bellhop/broker/embedded_redis.hpp"
#include "support/process.hpp"

namespace bellhop::broker {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command and returns its stdout and stderr, trailing newlines trimmed.
std::string run(const std::string& cmd) { return test::run_capture(cmd, true); }

std::string cli_unix(const embedded_redis& redis, const std::string& args) {
  const auto ep = redis.endpoint();
  return run("redis-cli --no-auth-warning -s " + shell_quote(ep.path) + " -a " +
             shell_quote(ep.password) + " " + args);
}

std::string cli_tcp(std::uint16_t port, const std::string& password, const std::string& args) {
  std::string cmd = "redis-cli --no-auth-warning -h 127.0.0.1 -p " + std::to_string(port);
  if (!password.empty()) cmd += " -a " + shell_quote(password);
  return run(cmd + " " + args);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

unsigned file_mode(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Alive = present in /proc and not a zombie (an orphan may wait for a lazy init to reap it).
bool process_alive(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const auto paren = line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  const char state = line[paren + 2];
  return state != 'Z' && state != 'X';
}

// True if this test process has any child, running or zombie. Tests run in their own process
// (ctest runs each one separately) and redis-cli children are reaped by pclose.
bool has_children() {
  siginfo_t info{};
  return !(::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == -1 && errno == ECHILD);
}

class embedded_redis_test : public ::testing::Test {
 protected:
  embedded_redis_options options() {
    embedded_redis_options o;
    o.data_dir = dir_.path() / "data";
    o.port = test::free_port();
    o.start_timeout = 10s;
    o.stop_timeout = 5s;
    o.restart_backoff_initial = 100ms;
    o.restart_backoff_max = 1s;
    return o;
  }

  test::temp_dir dir_;
};

TEST_F(embedded_redis_test, answers_on_unix_socket_and_on_loopback_tcp_with_password_only) {
  const auto o = options();
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();

  const auto ep = redis.endpoint();
  EXPECT_EQ(ep.kind, redis_endpoint::transport::unix_socket);
  EXPECT_EQ(ep.path, (o.data_dir / "redis.sock").string());
  EXPECT_EQ(ep.password.size(), 64u);
  EXPECT_EQ(cli_unix(redis, "PING"), "PONG");
  EXPECT_EQ(cli_tcp(o.port, ep.password, "PING"), "PONG");
  EXPECT_NE(cli_tcp(o.port, "", "PING").find("NOAUTH"), std::string::npos);
  EXPECT_NE(cli_tcp(o.port, "wrong-password", "PING").find("WRONGPASS"), std::string::npos);

  const auto stats = redis.stats();
  EXPECT_TRUE(stats.running);
  EXPECT_EQ(stats.restarts, 0u);
  ASSERT_GT(stats.pid, 0);
  // Its own process group, so a Ctrl-C in bellhop's terminal does not reach it.
  EXPECT_EQ(::getpgid(stats.pid), stats.pid);
  EXPECT_NE(::getpgid(stats.pid), ::getpgrp());

  const auto hint = redis.connect_hint();
  EXPECT_NE(hint.find("-p " + std::to_string(o.port)), std::string::npos) << hint;
  EXPECT_NE(hint.find(redis.password_file().string()), std::string::npos) << hint;
  EXPECT_EQ(hint.find(ep.password), std::string::npos) << hint;
}

TEST_F(embedded_redis_test, writes_a_private_config_with_aof_noeviction_and_the_durability) {
  auto o = options();
  o.durability = "always";
  o.maxmemory = "64mb";
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();

  const auto config_path = o.data_dir / "redis.conf";
  const auto config = read_file(config_path);
  EXPECT_NE(config.find("\nappendonly yes\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\nappendfsync always\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\nmaxmemory-policy noeviction\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\nmaxmemory 64mb\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\nunixsocketperm 700\n"), std::string::npos) << config;
  EXPECT_NE(config.find("\nauto-aof-rewrite-min-size 256mb\n"), std::string::npos) << config;
  EXPECT_EQ(file_mode(config_path), 0600u);
  EXPECT_EQ(file_mode(o.data_dir / "redis"), 0700u);
  EXPECT_EQ(file_mode(redis.password_file()), 0600u);

  // What the running server actually uses, not just what the file says.
  EXPECT_EQ(cli_unix(redis, "CONFIG GET appendonly"), "appendonly\nyes");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET appendfsync"), "appendfsync\nalways");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET maxmemory-policy"), "maxmemory-policy\nnoeviction");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET maxmemory"), "maxmemory\n67108864");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET save"), "save");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET auto-aof-rewrite-min-size"),
            "auto-aof-rewrite-min-size\n268435456");
}

TEST_F(embedded_redis_test, everysec_is_the_default_durability_and_port_zero_means_no_tcp) {
  auto o = options();
  o.port = 0;
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  EXPECT_EQ(cli_unix(redis, "CONFIG GET appendfsync"), "appendfsync\neverysec");
  EXPECT_EQ(cli_unix(redis, "CONFIG GET port"), "port\n0");
  EXPECT_NE(redis.connect_hint().find(o.data_dir.string()), std::string::npos);
}

TEST_F(embedded_redis_test, password_is_generated_once_and_reused) {
  const auto o = options();
  std::string first;
  {
    embedded_redis redis(o);
    auto started = redis.start();
    ASSERT_TRUE(started) << started.error();
    first = redis.endpoint().password;
    redis.stop();
  }
  ASSERT_EQ(first.size(), 64u);
  EXPECT_EQ(first.find_first_not_of("0123456789abcdef"), std::string::npos);

  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  EXPECT_EQ(redis.endpoint().password, first);
  EXPECT_EQ(read_file(redis.password_file()), first + "\n");
  EXPECT_EQ(file_mode(redis.password_file()), 0600u);
  EXPECT_EQ(cli_tcp(o.port, first, "PING"), "PONG");
}

TEST_F(embedded_redis_test, a_password_file_readable_by_others_is_made_private) {
  const auto o = options();
  fs::create_directories(o.data_dir);
  const auto file = o.data_dir / "redis.password";
  std::ofstream(file) << "operator-chosen-password-42\n";
  fs::permissions(file, fs::perms(0644));

  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  EXPECT_EQ(file_mode(file), 0600u);
  EXPECT_EQ(redis.endpoint().password, "operator-chosen-password-42");
  EXPECT_EQ(cli_tcp(o.port, "operator-chosen-password-42", "PING"), "PONG");
}

TEST_F(embedded_redis_test, data_survives_stop_and_start_through_the_aof) {
  embedded_redis redis(options());
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(cli_unix(redis, "RPUSH inbound:messages m1 m2"), "2");
  const int first_pid = redis.stats().pid;

  redis.stop();
  EXPECT_FALSE(redis.stats().running);
  EXPECT_FALSE(process_alive(first_pid));

  started = redis.start();
  ASSERT_TRUE(started) << started.error();
  EXPECT_NE(redis.stats().pid, first_pid);
  EXPECT_EQ(cli_unix(redis, "LRANGE inbound:messages 0 -1"), "m1\nm2");
}

TEST_F(embedded_redis_test, restarts_redis_after_it_is_killed) {
  auto o = options();
  o.durability = "always";  // so a write acknowledged before kill -9 must survive it
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(cli_unix(redis, "SET before-crash yes"), "OK");
  const int first_pid = redis.stats().pid;

  ASSERT_EQ(::kill(first_pid, SIGKILL), 0);
  ASSERT_TRUE(test::eventually(
      [&] {
        const auto s = redis.stats();
        return s.running && s.pid > 0 && s.pid != first_pid;
      },
      5s));
  EXPECT_EQ(redis.stats().restarts, 1u);
  EXPECT_FALSE(process_alive(first_pid));
  EXPECT_EQ(cli_unix(redis, "PING"), "PONG");
  EXPECT_EQ(cli_unix(redis, "GET before-crash"), "yes");
}

TEST_F(embedded_redis_test, stop_leaves_no_process_and_is_idempotent) {
  embedded_redis redis(options());
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  const int pid = redis.stats().pid;
  ASSERT_TRUE(process_alive(pid));

  redis.stop();
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));  // exited and reaped
  EXPECT_FALSE(has_children());
  const auto stats = redis.stats();
  EXPECT_FALSE(stats.running);
  EXPECT_EQ(stats.pid, 0);
  redis.stop();
}

TEST_F(embedded_redis_test, destructor_stops_redis) {
  int pid = 0;
  {
    embedded_redis redis(options());
    auto started = redis.start();
    ASSERT_TRUE(started) << started.error();
    pid = redis.stats().pid;
  }
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(has_children());
}

TEST_F(embedded_redis_test, stop_kills_a_redis_that_ignores_sigterm_after_the_timeout) {
  auto o = options();
  o.stop_timeout = 500ms;
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  const int pid = redis.stats().pid;
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);  // a stopped process cannot act on SIGTERM

  const auto t0 = steady::now();
  redis.stop();
  EXPECT_LT(steady::now() - t0, 5s);
  EXPECT_FALSE(fs::exists("/proc/" + std::to_string(pid)));
  EXPECT_FALSE(has_children());
}

TEST_F(embedded_redis_test, stop_interrupts_the_restart_backoff) {
  auto o = options();
  o.restart_backoff_initial = 20s;
  o.restart_backoff_max = 20s;
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_TRUE(started) << started.error();
  ASSERT_EQ(::kill(redis.stats().pid, SIGKILL), 0);
  ASSERT_TRUE(test::eventually([&] { return redis.stats().pid == 0; }, 5s));

  const auto t0 = steady::now();
  redis.stop();
  EXPECT_LT(steady::now() - t0, 2s);  // the backoff is at least 10 s
  EXPECT_EQ(redis.stats().restarts, 0u);
  EXPECT_FALSE(has_children());
}

TEST_F(embedded_redis_test, redis_dies_with_its_parent) {
  const auto o = options();
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  const pid_t bellhop = ::fork();
  ASSERT_GE(bellhop, 0);
  if (bellhop == 0) {
    ::close(fds[0]);
    embedded_redis redis(o);
    const int pid = redis.start() ? redis.stats().pid : -1;
    [[maybe_unused]] auto n = ::write(fds[1], &pid, sizeof pid);
    ::pause();  // until the test kills this "bellhop" without letting it stop Redis
    ::_exit(0);
  }
  ::close(fds[1]);
  int redis_pid = 0;
  const auto n = ::read(fds[0], &redis_pid, sizeof redis_pid);
  ::close(fds[0]);
  ::kill(bellhop, SIGKILL);
  ::waitpid(bellhop, nullptr, 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof redis_pid));
  ASSERT_GT(redis_pid, 0);
  EXPECT_TRUE(test::eventually([&] { return !process_alive(redis_pid); }, 10s));
}

TEST_F(embedded_redis_test, missing_redis_server_is_reported) {
  auto o = options();
  o.redis_server = "/nonexistent/redis-server";
  embedded_redis by_path(o);
  auto started = by_path.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("redis-server not found"), std::string::npos) << started.error();
  EXPECT_NE(started.error().find("apt-get install redis-server"), std::string::npos);

  o.redis_server = "bellhop-no-such-redis-server";
  embedded_redis by_name(o);
  started = by_name.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("redis-server not found"), std::string::npos) << started.error();
  EXPECT_EQ(started.error().find('\n'), std::string::npos);
  EXPECT_FALSE(has_children());
}

// A stand-in for redis-server: a shell script with the given body.
fs::path fake_redis_server(const fs::path& dir, const std::string& body) {
  const auto path = dir / "fake-redis-server";
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(path, fs::perms(0755));
  return path;
}

TEST_F(embedded_redis_test, a_redis_server_that_exits_at_startup_is_reported_with_its_output) {
  auto o = options();
  o.redis_server = fake_redis_server(dir_.path(), "echo 'fatal: bad things' >&2\nexit 3").string();
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("exited with status 3"), std::string::npos) << started.error();
  EXPECT_NE(started.error().find("fatal: bad things"), std::string::npos) << started.error();
  EXPECT_EQ(started.error().find('\n'), std::string::npos);
  EXPECT_FALSE(has_children());
}

TEST_F(embedded_redis_test, a_redis_server_that_never_answers_times_out_and_is_killed) {
  auto o = options();
  // Not exec'd: the sleep is a grandchild in the same process group and must die too.
  o.redis_server = fake_redis_server(dir_.path(), "sleep 61.25\ntrue").string();
  o.start_timeout = 500ms;
  embedded_redis redis(o);
  const auto t0 = steady::now();
  auto started = redis.start();
  const auto elapsed = steady::now() - t0;
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("did not answer PING within 500 ms"), std::string::npos)
      << started.error();
  EXPECT_LT(elapsed, 3s);
  EXPECT_FALSE(has_children());
  EXPECT_TRUE(test::eventually([] { return test::find_processes("sleep 61.25").empty(); }, 5s));
}

TEST_F(embedded_redis_test, unwritable_data_dir_is_reported) {
  // Tests run as root, which permission bits do not stop: a directory cannot exist under a file.
  const auto file = dir_.path() / "a-file";
  std::ofstream(file) << "x";
  auto o = options();
  o.data_dir = file / "data";
  embedded_redis redis(o);
  auto started = redis.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("data dir " + o.data_dir.string() + " is not writable"),
            std::string::npos)
      << started.error();
  EXPECT_NE(started.error().find("--data-dir"), std::string::npos);
  EXPECT_FALSE(has_children());
}

TEST_F(embedded_redis_test, a_data_dir_in_use_is_refused) {
  const auto o = options();
  embedded_redis first(o);
  auto started = first.start();
  ASSERT_TRUE(started) << started.error();

  auto other = o;
  other.port = test::free_port();
  embedded_redis second(other);
  started = second.start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("already used"), std::string::npos) << started.error();
  EXPECT_EQ(cli_unix(first, "PING"), "PONG");
}

TEST_F(embedded_redis_test, port_in_use_fails_fast_naming_the_port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  auto o = options();
  o.port = ntohs(addr.sin_port);
  o.start_timeout = 5s;
  embedded_redis redis(o);
  const auto t0 = steady::now();
  auto started = redis.start();
  const auto elapsed = steady::now() - t0;
  ::close(fd);

  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("port " + std::to_string(o.port) + " is already in use"),
            std::string::npos)
      << started.error();
  EXPECT_LT(elapsed, o.start_timeout);
  EXPECT_FALSE(has_children());
  EXPECT_EQ(redis.stats().pid, 0);
  EXPECT_FALSE(redis.stats().running);
}

}  // namespace
}  // namespace bellhop::broker
