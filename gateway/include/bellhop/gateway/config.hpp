#pragma once

#include <boost/system/result.hpp>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/core/config.hpp"

// Loading the configuration of one bellhop process: defaults <- JSON file <- BELLHOP_*
// environment <- flags. Every key, its type, default and environment variable is listed in
// docs/configuration.md.

namespace bellhop::gateway {

struct config_overrides {  // from command-line flags
  std::optional<std::string> config_file, listen, redis_url, data_dir;
};

inline constexpr std::string_view default_config_path = "/etc/bellhop/config.json";

// Loads defaults <- file <- BELLHOP_* environment <- flags, then validates.
// File: overrides.config_file, else env BELLHOP_CONFIG, else default_config_path if it exists,
// else none. A file named explicitly (flag or BELLHOP_CONFIG) must exist.
// `env` is the environment (main passes environment_map(environ)).
// Errors are one line naming the source and the key, e.g.
//   "config /etc/bellhop/config.json: 'http.max_body_bytes' must be a positive integer"
//   "environment BELLHOP_HTTP_THREADS: must be an integer"
//   "option --listen: ..."
boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env);
// Same, with the fallback file path injectable (tests).
boost::system::result<config, std::string> load_config(
    const config_overrides& overrides, const std::map<std::string, std::string>& env,
    const std::filesystem::path& default_file);

// The file's part of load_config on text already read, without environment or flags: defaults
// <- text, then validated. Errors name `label` where load_config names "config <path>".
boost::system::result<config, std::string> parse_config_text(std::string_view text,
                                                             std::string_view label);

std::map<std::string, std::string> environment_map(char** envp);

// "host:port", "[::1]:8080", ":8080" (all interfaces, host "0.0.0.0"). Port 0..65535.
boost::system::result<listen_address, std::string> parse_listen(std::string_view text);

// Whether a listen address accepts only connections from this host (127.0.0.0/8, ::1,
// localhost). An invalid address is not.
bool is_loopback_listen(std::string_view listen);

// Non-fatal problems worth a warn line at startup (no adapter keys, empty secrets, unknown
// BELLHOP_* variables, ...). One sentence each.
std::vector<std::string> config_warnings(const config& cfg);

// For `check-config`: each provider webhook that is refused because its channel (and so the
// secret that verifies it) is not configured. Not warned at every start: a hotel without SMS
// need not hear about it each time.
std::vector<std::string> webhook_warnings(const config& cfg);

// A complete, valid, commented config file with fresh random secrets (auth.jwt_secret,
// auth.admin_token, one adapter key "default-adapter" for all properties).
// Throws std::runtime_error only if the system RNG fails.
std::string generate_config_text(const std::string& data_dir, const std::string& listen);

// Writes text to path with mode 0600; it is never readable by others, not even briefly.
// Refuses to replace an existing file unless force (then replaced atomically by rename).
boost::system::result<void, std::string> write_secret_file(const std::filesystem::path& path,
                                                           const std::string& text, bool force);

}  // namespace bellhop::gateway
