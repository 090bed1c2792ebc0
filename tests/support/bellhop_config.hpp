#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace bellhop::test {

// The members most process tests' bellhop configs start with, as JSON text ending in a comma
// (the test's own members follow, then its closing brace): "listen" on 127.0.0.1:<port>,
// "data_dir", "public_url" unless `public_url` is empty, and "redis" with a short command timeout.
std::string bellhop_config_head(std::uint16_t port, const std::filesystem::path& data_dir,
                                const std::string& redis_url, const std::string& public_url = "",
                                int command_timeout_ms = 1000);

// http://127.0.0.1:<port>, the public_url of a bellhop that is reached where it listens.
std::string local_url(std::uint16_t port);

}  // namespace bellhop::test
