#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace bellhop::test {

struct http_result {
  int status = 0;  // 0: could not connect or no answer
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// One blocking HTTP/1.1 request to 127.0.0.1:port, with a short timeout.
http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {},
                         const std::map<std::string, std::string>& headers = {});
inline http_result http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

}  // namespace bellhop::test
