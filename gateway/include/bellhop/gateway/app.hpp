#pragma once

#include <boost/system/result.hpp>
#include <functional>
#include <string>

#include "bellhop/gateway/config.hpp"

namespace bellhop::gateway {

// Process exit codes of the bellhop command.
enum exit_code : int { exit_ok = 0, exit_failure = 1, exit_usage = 2 };

// Runs a bellhop process until SIGTERM/SIGINT: HTTP server, Redis broker and, with
// redis.url = "embedded", the private redis-server. Startup errors are printed as one line on
// stderr and return a non-zero exit code.
//
// SIGHUP does not stop it: `reload` (the config loaded again from the same file, environment
// and flags) is checked and the answer logged, one line: the config's errors, or that it is
// valid and what a restart would change. The running process keeps its config: the flows take
// their options at start (docs/properties.md, "Changing properties and accounts").
using config_loader = std::function<boost::system::result<config, std::string>()>;
int serve(const config& cfg, config_loader reload = {});

}  // namespace bellhop::gateway
