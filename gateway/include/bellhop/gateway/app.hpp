#pragma once

#include "bellhop/gateway/config.hpp"

namespace bellhop::gateway {

// Process exit codes of the bellhop command.
enum exit_code : int { exit_ok = 0, exit_failure = 1, exit_usage = 2 };

// Runs a bellhop process until SIGTERM/SIGINT: HTTP server, Redis broker and, with
// redis.url = "embedded", the private redis-server. Startup errors are printed as one line on
// stderr and return a non-zero exit code.
int serve(const config& cfg);

}  // namespace bellhop::gateway
