#include "bellhop/gateway/user_command.hpp"

#include <spdlog/spdlog.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <iostream>
#include <optional>
#include <string>

#include "bellhop/broker/broker.hpp"
#include "bellhop/broker/embedded_redis.hpp"
#include "bellhop/console/users.hpp"
#include "bellhop/gateway/app.hpp"

namespace bellhop::gateway {
namespace {

int fail(const std::string& line) {
  std::fprintf(stderr, "bellhop: %s\n", line.c_str());
  return exit_failure;
}

// One line of stdin without its line end; nullopt at end of input.
std::optional<std::string> read_line() {
  std::string line;
  if (!std::getline(std::cin, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// Reads a line from the terminal with echo off; the echo comes back whatever happens.
std::optional<std::string> prompt_hidden(const char* prompt) {
  std::fprintf(stderr, "%s", prompt);
  std::fflush(stderr);
  termios old{};
  const bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
  if (tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  auto line = read_line();
  if (tty) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  std::fprintf(stderr, "\n");
  return line;
}

// The new password: asked twice on a terminal, else one line of stdin. The error is one line.
boost::system::result<std::string, std::string> read_new_password() {
  using out = boost::system::result<std::string, std::string>;
  std::optional<std::string> password;
  if (::isatty(STDIN_FILENO)) {
    password = prompt_hidden("Password: ");
    const auto again = prompt_hidden("Password (again): ");
    if (password && again && *password != *again)
      return out(boost::system::in_place_error, "passwords differ");
  } else {
    password = read_line();
  }
  if (!password) return out(boost::system::in_place_error, "no password given (one line on stdin)");
  if (auto why = check_password(*password); !why.empty())
    return out(boost::system::in_place_error, why);
  return out(boost::system::in_place_value, std::move(*password));
}

boost::system::result<broker::redis_endpoint, std::string> endpoint_of(const config& cfg) {
  using out = boost::system::result<broker::redis_endpoint, std::string>;
  if (cfg.redis.url == "embedded") return broker::running_embedded_endpoint(cfg.data_dir);
  auto ep = broker::parse_redis_url(cfg.redis.url);
  if (!ep) return out(boost::system::in_place_error, "config 'redis.url': " + ep.error().message);
  return *ep;
}

std::string format_time(std::int64_t ms) {
  if (ms <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out;
}

// Role and property ids of `user add`: the one-line error, or "".
std::string check_add(const config& cfg, const user_command& cmd) {
  if (!is_role(cmd.role)) return "bad role '" + cmd.role + "': staff or admin";
  if (cmd.properties.empty()) return "option --properties: is required (ids, or '*' for all)";
  if (cmd.properties.size() > max_user_properties)
    return "option --properties: at most " + std::to_string(max_user_properties) + " ids";
  for (const auto& p : cmd.properties) {
    if (p == "*") {
      if (cmd.properties.size() > 1) return "bad property id: '*' (all) cannot be combined";
      continue;
    }
    if (!contract::is_property_id(p))
      return "bad property id '" + p + "': 1-64 letters, digits, '-', '_' or '.'";
    bool known = false;
    for (const auto& q : cfg.properties) known = known || q.id == p;
    if (!known) return "bad property id '" + p + "': the config has no such property";
  }
  return {};
}

}  // namespace

int run_user_command(const config& cfg, const user_command& cmd) {
  if (cmd.action != "list" && !is_user_name(cmd.name))
    return fail("bad user name '" + cmd.name + "': 1-64 letters, digits, '.', '_', '-' or '@'");
  if (cmd.action == "add")
    if (auto why = check_add(cfg, cmd); !why.empty()) return fail(why);
  std::string hash;
  if (cmd.action == "add" || cmd.action == "passwd") {
    auto password = read_new_password();
    if (!password) return fail(password.error());
    auto h = hash_password(*password);
    wipe(*password);
    if (!h) return fail("cannot hash the password (libsodium failed: out of memory?)");
    hash = std::move(*h);
  }
  auto ep = endpoint_of(cfg);
  if (!ep) return fail(ep.error());

  spdlog::set_level(spdlog::level::warn);  // the broker's "connected" line is no output here
  broker::broker_options bo;
  bo.endpoint = *ep;
  bo.command_timeout = std::chrono::milliseconds(cfg.redis.command_timeout_ms);
  bo.connect_timeout = std::chrono::milliseconds(cfg.redis.connect_timeout_ms);
  bo.client_name = "bellhop-user";
  broker::broker redis(bo);
  redis.start();
  const contract::key_space keys(cfg.redis.key_prefix);
  user_store users(redis, keys);
  boost::asio::io_context ioc;
  const auto ex = ioc.get_executor();
  // The broker answers on `ioc`, which runs until the one answer came.
  auto pending = boost::asio::make_work_guard(ioc);
  int code = exit_ok;
  auto done = [&](std::string error, std::string ok_line) {
    pending.reset();
    if (!error.empty()) {
      if (error.starts_with("Redis: "))
        error = "cannot reach Redis (" + ep->redacted() + "): " + error.substr(7) +
                (cfg.redis.url == "embedded" ? "; is bellhop running?" : "");
      code = fail(error);
    } else {
      std::printf("%s\n", ok_line.c_str());
    }
  };
  const auto& name = cmd.name;
  if (cmd.action == "add") {
    users.add(name, hash, cmd.role, cmd.properties, ex, [&](std::string e) {
      done(std::move(e),
           "user '" + name + "' added (" + cmd.role + ", properties " + join(cmd.properties) + ")");
    });
  } else if (cmd.action == "passwd") {
    users.set_password(name, hash, ex, [&](std::string e) {
      done(std::move(e), "password of '" + name + "' changed; their sessions have ended");
    });
  } else if (cmd.action == "disable" || cmd.action == "enable") {
    const bool disable = cmd.action == "disable";
    users.set_disabled(name, disable, ex, [&, disable](std::string e) {
      done(std::move(e),
           "user '" + name + "' " + (disable ? "disabled; their sessions have ended" : "enabled"));
    });
  } else {
    users.list(ex, [&](std::string e, std::vector<user_record> list) {
      if (!e.empty()) return done(std::move(e), {});
      pending.reset();
      std::printf("%-24s %-6s %-30s %-9s %s\n", "NAME", "ROLE", "PROPERTIES", "STATUS", "CREATED");
      for (const auto& u : list)
        std::printf("%-24s %-6s %-30s %-9s %s\n", u.name.c_str(), u.role.c_str(),
                    join(u.properties).c_str(), u.disabled ? "disabled" : "enabled",
                    format_time(u.created_at).c_str());
    });
  }
  ioc.run();
  redis.stop();
  return std::fflush(stdout) == 0 ? code : exit_failure;
}

}  // namespace bellhop::gateway
