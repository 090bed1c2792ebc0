#include "support/bellhop_config.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace bellhop::test {
namespace {

std::string quoted(const std::string& s) {
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  writer.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return out.GetString();
}

}  // namespace

std::string bellhop_config_head(std::uint16_t port, const std::filesystem::path& data_dir,
                                const std::string& redis_url, const std::string& public_url,
                                int command_timeout_ms) {
  std::string out = "\n  \"listen\": " + quoted("127.0.0.1:" + std::to_string(port)) +
                    ",\n  \"data_dir\": " + quoted(data_dir.string()) + ",";
  if (!public_url.empty()) out += "\n  \"public_url\": " + quoted(public_url) + ",";
  out += "\n  \"redis\": {\"url\": " + quoted(redis_url) +
         ", \"command_timeout_ms\": " + std::to_string(command_timeout_ms) + "},";
  return out;
}

std::string local_url(std::uint16_t port) {
  return "http://127.0.0.1:" + std::to_string(port);
}

}  // namespace bellhop::test
