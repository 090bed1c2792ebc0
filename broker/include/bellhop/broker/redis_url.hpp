#pragma once

#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>

namespace bellhop::broker {

// Where and how to reach Redis: redis://[user:password@]host:port[/db] or unix:///path[?db=N].
struct redis_endpoint {
  enum class transport { tcp, unix_socket };
  transport kind = transport::tcp;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string path;  // unix socket path
  std::string user;
  std::string password;
  int db = 0;

  // The endpoint with the password masked, safe for logs.
  std::string redacted() const;
};

// Parses a Redis URL. On failure the error message says what is wrong with it.
struct url_error {
  std::string message;
};
boost::system::result<redis_endpoint, url_error> parse_redis_url(std::string_view url);

}  // namespace bellhop::broker
