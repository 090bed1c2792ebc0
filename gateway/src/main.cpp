// The bellhop command: serve (default), check-config, gen-config, gen-token, engine-acl, user,
// version.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "bellhop/broker/embedded_redis.hpp"
#include "bellhop/broker/redis_url.hpp"
#include "bellhop/contract/staff_token.hpp"
#include "bellhop/gateway/app.hpp"
#include "bellhop/gateway/config.hpp"
#include "bellhop/gateway/logging.hpp"
#include "bellhop/gateway/user_command.hpp"
#include "build_info.hpp"

extern char** environ;

namespace {

using namespace bellhop::gateway;

void add_config_flags(CLI::App* cmd, config_overrides& o) {
  cmd->add_option("-c,--config", o.config_file, "config file (JSON, comments allowed)");
  cmd->add_option("--listen", o.listen, "HTTP listen address, host:port");
  cmd->add_option("--redis", o.redis_url,
                  "\"embedded\", redis://[user:password@]host:port[/db] or unix:///path");
  cmd->add_option("--data-dir", o.data_dir, "data directory (embedded Redis lives here)");
}

int fail(const std::string& line, int code) {
  std::fprintf(stderr, "bellhop: %s\n", line.c_str());
  return code;
}

int run_serve(const config_overrides& overrides) {
  auto cfg = load_config(overrides, environment_map(environ));
  if (!cfg) return fail(cfg.error(), exit_usage);
  if (auto logging = setup_logging(cfg->log); !logging) return fail(logging.error(), exit_usage);
  if (!cfg->source_file.empty()) spdlog::info("config loaded from {}", cfg->source_file);
  for (const auto& warning : config_warnings(*cfg)) spdlog::warn("config: {}", warning);
  return serve(*cfg, [overrides] { return load_config(overrides, environment_map(environ)); });
}

int run_check_config(const config_overrides& overrides) {
  auto cfg = load_config(overrides, environment_map(environ));
  if (!cfg) return fail(cfg.error(), exit_failure);
  if (cfg->redis.url != "embedded") {
    if (auto ep = bellhop::broker::parse_redis_url(cfg->redis.url); !ep) {
      return fail("config 'redis.url': " + ep.error().message, exit_failure);
    }
  }
  for (const auto& warning : config_warnings(*cfg)) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  for (const auto& warning : webhook_warnings(*cfg)) {
    std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }
  std::printf("config OK (%s)\n",
              cfg->source_file.empty() ? "defaults and environment" : cfg->source_file.c_str());
  return exit_ok;
}

struct gen_token_options {
  std::string subject;
  std::vector<std::string> properties;
  std::string ttl = "12h";
};

constexpr std::chrono::seconds max_token_ttl = std::chrono::days(30);

// "90s", "30m", "8h", "7d": a positive whole number and one unit, at most max_token_ttl.
std::optional<std::chrono::seconds> parse_ttl(std::string_view text) {
  if (text.size() < 2) return std::nullopt;
  std::int64_t unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  const auto digits = text.substr(0, text.size() - 1);
  std::int64_t n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n <= 0 ||
      n > max_token_ttl.count() / unit) {
    return std::nullopt;
  }
  return std::chrono::seconds(n * unit);
}

// Prints only the token on stdout: `bellhop gen-token ... > token.txt` or `$(...)` just work.
int run_gen_token(const config_overrides& overrides, const gen_token_options& opts) {
  namespace rt = bellhop::contract;
  const auto ttl = parse_ttl(opts.ttl);
  if (!ttl) {
    return fail(
        "option --ttl: expected a whole number of s, m, h or d (90s, 30m, 8h, 7d), at most 30d",
        exit_usage);
  }
  if (opts.subject.empty() || opts.subject.size() > rt::max_subject_bytes) {
    return fail("option --sub: must be 1 to " + std::to_string(rt::max_subject_bytes) + " bytes",
                exit_usage);
  }
  for (const auto& p : opts.properties) {
    if (p.empty() || p.size() > rt::max_property_id_bytes) {
      return fail("option --properties: each property id must be 1 to " +
                      std::to_string(rt::max_property_id_bytes) + " bytes",
                  exit_usage);
    }
    if (p == "*" && opts.properties.size() > 1) {
      return fail("option --properties: '*' (all properties) cannot be combined with ids",
                  exit_usage);
    }
  }
  if (opts.properties.empty()) return fail("option --properties: is required", exit_usage);

  auto cfg = load_config(overrides, environment_map(environ));
  if (!cfg) return fail(cfg.error(), exit_failure);
  if (cfg->auth.jwt_secret.empty()) {
    return fail("auth.jwt_secret is empty (" +
                    (cfg->source_file.empty() ? std::string("no config file loaded")
                                              : "config " + cfg->source_file) +
                    "): set it in the config file or BELLHOP_AUTH_JWT_SECRET to sign tokens",
                exit_failure);
  }
  std::string token;
  try {
    token = rt::mint_staff_token(cfg->auth.jwt_secret, opts.subject, opts.properties,
                                 std::chrono::system_clock::now(), *ttl);
  } catch (const std::exception& e) {
    return fail(e.what(), exit_failure);
  }
  std::printf("%s\n", token.c_str());
  return std::fflush(stdout) == 0 ? exit_ok : exit_failure;
}

// For an external Redis: the ACL SETUSER line of the `engine` user (docs/ai-engine.md,
// "Connecting"), with the configured redis.key_prefix. Prints no password: its SHA-256, or a
// placeholder.
int run_engine_acl(const config_overrides& overrides, const std::string& password_file) {
  auto cfg = load_config(overrides, environment_map(environ));
  if (!cfg) return fail(cfg.error(), exit_failure);
  std::string password;
  if (!password_file.empty()) {
    std::ifstream in(password_file);
    if (!(in >> password) || password.size() > 512)
      return fail("option --password-file: cannot read a password from " + password_file,
                  exit_failure);
  }
  std::printf("%s\n", bellhop::broker::engine_acl_setuser(cfg->redis.key_prefix, password).c_str());
  return std::fflush(stdout) == 0 ? exit_ok : exit_failure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bellhop: a self-hosted messaging gateway for hotels"};
  app.require_subcommand(0, 1);
  app.fallthrough();

  config_overrides overrides;
  auto* serve_cmd = app.add_subcommand("serve", "run the gateway (the default command)");
  add_config_flags(serve_cmd, overrides);
  auto* check_cmd = app.add_subcommand("check-config", "validate the configuration and exit");
  add_config_flags(check_cmd, overrides);

  std::string output, gen_data_dir = "/var/lib/bellhop", gen_listen = "0.0.0.0:8080";
  bool force = false;
  auto* gen_cmd =
      app.add_subcommand("gen-config", "write a new config file with freshly generated secrets");
  gen_cmd->add_option("-o,--output", output, "file to write (mode 0600)")->required();
  gen_cmd->add_option("--data-dir", gen_data_dir, "data_dir to put in the file");
  gen_cmd->add_option("--listen", gen_listen, "listen address to put in the file");
  gen_cmd->add_flag("--force", force, "replace an existing file");
  gen_token_options token_opts;
  auto* token_cmd = app.add_subcommand(
      "gen-token", "print a staff dashboard token (JWT, HS256, signed with auth.jwt_secret)");
  token_cmd->add_option("--sub", token_opts.subject, "who the token is for (\"sub\")")->required();
  token_cmd
      ->add_option("--properties", token_opts.properties,
                   "comma-separated property ids, or '*' for all")
      ->required()
      ->delimiter(',');
  token_cmd->add_option("--ttl", token_opts.ttl, "lifetime: 90s, 30m, 8h, 7d (at most 30d)")
      ->capture_default_str();
  add_config_flags(token_cmd, overrides);
  std::string engine_password_file;
  auto* acl_cmd = app.add_subcommand(
      "engine-acl",
      "print the ACL SETUSER line of the AI engines' Redis user, for an external Redis");
  acl_cmd->add_option("--password-file", engine_password_file,
                      "the engine's password, put in the line as its SHA-256");
  add_config_flags(acl_cmd, overrides);
  user_command user_opts;
  auto* user_cmd = app.add_subcommand(
      "user", "console accounts (docs/console.md): add, list, disable, enable, passwd");
  user_cmd->require_subcommand(1, 1);
  auto* user_add = user_cmd->add_subcommand("add", "add an account; the password is read");
  user_add->add_option("name", user_opts.name, "the user name")->required();
  user_add->add_option("--role", user_opts.role, "staff or admin")->capture_default_str();
  user_add
      ->add_option("--properties", user_opts.properties,
                   "comma-separated property ids, or '*' for all")
      ->required()
      ->delimiter(',');
  add_config_flags(user_add, overrides);
  auto* user_list = user_cmd->add_subcommand("list", "list the accounts (never their passwords)");
  add_config_flags(user_list, overrides);
  for (const auto& [action, help] :
       {std::pair{"disable", "disable an account and end its sessions at once"},
        std::pair{"enable", "enable an account again"},
        std::pair{"passwd", "set a new password (read) and end the account's sessions"}}) {
    auto* sub = user_cmd->add_subcommand(action, help);
    sub->add_option("name", user_opts.name, "the user name")->required();
    add_config_flags(sub, overrides);
  }
  add_config_flags(user_cmd, overrides);
  auto* version_cmd = app.add_subcommand("version", "print the version");
  // `bellhop --config x` without a subcommand means serve.
  add_config_flags(&app, overrides);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? exit_ok : exit_usage;
  }

  if (*version_cmd) {
    std::printf("bellhop %s (%s)\n", bellhop::gateway::build_info::version,
                bellhop::gateway::build_info::commit);
    return exit_ok;
  }
  if (*gen_cmd) {
    if (auto listen = parse_listen(gen_listen); !listen) return fail(listen.error(), exit_usage);
    std::string text;
    try {
      text = generate_config_text(gen_data_dir, gen_listen);
    } catch (const std::exception& e) {
      return fail(e.what(), exit_failure);
    }
    if (auto written = write_secret_file(output, text, force); !written) {
      return fail(written.error(), exit_failure);
    }
    std::printf("wrote %s (mode 0600)\n", output.c_str());
    return exit_ok;
  }
  if (*check_cmd) return run_check_config(overrides);
  if (*token_cmd) return run_gen_token(overrides, token_opts);
  if (*acl_cmd) return run_engine_acl(overrides, engine_password_file);
  if (*user_cmd) {
    user_opts.action = user_cmd->get_subcommands().front()->get_name();
    auto cfg = load_config(overrides, environment_map(environ));
    if (!cfg) return fail(cfg.error(), exit_failure);
    return run_user_command(*cfg, user_opts);
  }
  return run_serve(overrides);
}
