#pragma once

#include <string>
#include <vector>

#include "bellhop/gateway/config.hpp"

namespace bellhop::gateway {

// `bellhop user add|list|disable|enable|passwd` (docs/console.md, "Accounts").
struct user_command {
  std::string action;  // add | list | disable | enable | passwd
  std::string name;
  std::string role = "staff";
  std::vector<std::string> properties;  // add: ids, or {"*"}
};

// Runs the command against the Redis `cfg` names (the running bellhop's embedded one by
// default). A password is read from a no-echo prompt (twice) when stdin is a terminal, else as
// one line of stdin. Prints the outcome, or one line of error on stderr; returns the exit code.
int run_user_command(const config& cfg, const user_command& cmd);

}  // namespace bellhop::gateway
