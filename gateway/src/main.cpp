// The bellhop command: serve (default), check-config, gen-config, version.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <iostream>

#include "bellhop/broker/redis_url.hpp"
#include "bellhop/gateway/app.hpp"
#include "bellhop/gateway/config.hpp"
#include "bellhop/gateway/logging.hpp"
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
  return serve(*cfg);
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
  std::printf("config OK (%s)\n",
              cfg->source_file.empty() ? "defaults and environment" : cfg->source_file.c_str());
  return exit_ok;
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
  return run_serve(overrides);
}
