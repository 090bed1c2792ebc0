#pragma once

#include <spdlog/formatter.h>

#include <boost/system/result.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "bellhop/gateway/config.hpp"

namespace bellhop::gateway {

// Makes spdlog's default logger "bellhop" write to stderr at cfg.level in cfg.format:
//   text: 2026-11-27T20:55:15.123Z info message
//   json: {"ts":"2026-11-27T20:55:15.123Z","level":"info","msg":"message","logger":"bellhop"}
// Loggers registered with spdlog, now or later, share the format and level. One event is always
// one line: control characters in messages are escaped in both formats. Never log secrets.
boost::system::result<void, std::string> setup_logging(const config::log_t& cfg);

// The formatter setup_logging installs: "text" or "json"; nullptr for any other format.
std::unique_ptr<spdlog::formatter> make_log_formatter(std::string_view format);

}  // namespace bellhop::gateway
