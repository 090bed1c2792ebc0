#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace bellhop::test {

struct http_result {
  int status = 0;  // 0: could not connect or no answer
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

// A keep-alive HTTP/1.1 connection to 127.0.0.1:port for tests that send many requests.
// Reconnects transparently when the server closed it. Not thread-safe: one per thread.
class http_connection {
 public:
  explicit http_connection(std::uint16_t port);
  ~http_connection();
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;
  http_result request(const std::string& method, const std::string& target,
                      const std::string& body = {},
                      const std::map<std::string, std::string>& headers = {});

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// One blocking HTTP/1.1 request to 127.0.0.1:port, with a short timeout.
http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {},
                         const std::map<std::string, std::string>& headers = {});
inline http_result http_get(std::uint16_t port, const std::string& target) {
  return http_request(port, "GET", target);
}

}  // namespace bellhop::test
