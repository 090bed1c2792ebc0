#include "bellhop/broker/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <charconv>

namespace bellhop::broker {
namespace {

bool parse_int(std::string_view s, int& out) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

url_error fail(std::string_view url, std::string_view why) {
  // Never echo credentials back: report only the scheme-and-host part we know is safe.
  (void)url;
  return url_error{"invalid Redis URL: " + std::string(why)};
}

}  // namespace

std::string redis_endpoint::redacted() const {
  std::string out = kind == transport::unix_socket ? "unix://" : "redis://";
  if (!user.empty() || !password.empty()) {
    out.append(user).append(":***@");
  }
  if (kind == transport::unix_socket) {
    out.append(path);
    if (db) out.append("?db=").append(std::to_string(db));
    return out;
  }
  const bool v6 = host.find(':') != std::string::npos;
  out.append(v6 ? "[" : "").append(host).append(v6 ? "]" : "");
  out.append(":").append(std::to_string(port));
  if (db) out.append("/").append(std::to_string(db));
  return out;
}

boost::system::result<redis_endpoint, url_error> parse_redis_url(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) {
    return fail(text, "expected redis://[user:password@]host:port[/db] or unix:///path/to/socket");
  }
  const boost::urls::url_view u = *parsed;
  redis_endpoint ep;
  if (u.has_userinfo()) {
    ep.user = u.user();
    ep.password = u.password();
  }
  const auto scheme = u.scheme();
  if (scheme == "rediss") return fail(text, "TLS (rediss://) is not supported; use redis:// or unix://");
  if (scheme == "redis") {
    ep.kind = redis_endpoint::transport::tcp;
    if (u.host().empty()) return fail(text, "missing host");
    ep.host = u.host_address();
    if (u.has_port()) {
      int port = 0;
      if (!parse_int(u.port(), port) || port < 1 || port > 65535) {
        return fail(text, "port must be between 1 and 65535");
      }
      ep.port = static_cast<std::uint16_t>(port);
    }
    std::string path = u.path();
    if (!path.empty() && path != "/") {
      if (!parse_int(std::string_view(path).substr(1), ep.db) || ep.db < 0) {
        return fail(text, "database must be a number (redis://host:port/0)");
      }
    }
  } else if (scheme == "unix") {
    ep.kind = redis_endpoint::transport::unix_socket;
    if (!u.host().empty()) return fail(text, "unix socket URLs have no host: unix:///path/to/socket");
    ep.path = u.path();
    if (ep.path.empty() || ep.path.front() != '/') {
      return fail(text, "unix socket path must be absolute: unix:///path/to/socket");
    }
  } else {
    return fail(text, "scheme must be redis:// or unix://");
  }
  for (auto param : u.params()) {
    if (param.key == "db") {
      if (!parse_int(param.value, ep.db) || ep.db < 0) return fail(text, "db must be a number");
    } else if (param.key == "password") {
      ep.password = param.value;
    } else {
      return fail(text, "unknown parameter '" + std::string(param.key) + "'");
    }
  }
  return ep;
}

}  // namespace bellhop::broker
