#include "bellhop/core/client_address.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

namespace bellhop::gateway {
namespace {

namespace ip = boost::asio::ip;

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// One X-Forwarded-For entry: an address, optionally "[v6]" or "v6]:port"-less forms that
// proxies write ("[2001:db8::1]", "[2001:db8::1]:443", "192.0.2.1:443").
std::optional<ip::address> parse_entry(std::string_view s) {
  s = trim(s);
  if (s.starts_with('[')) {
    const auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    s = s.substr(1, close - 1);
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    s = s.substr(0, s.find(':'));  // IPv4 with a port
  }
  boost::system::error_code ec;
  const auto a = ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return unmapped(a);
}

bool in_network(const ip::address& a, const ip::address& base, unsigned prefix) {
  if (a.is_v4() != base.is_v4()) return false;
  auto match = [prefix](const auto& x, const auto& y) {
    unsigned bits = prefix;
    for (std::size_t i = 0; i < x.size() && bits > 0; ++i) {
      const unsigned take = std::min(bits, 8u);
      const auto mask = static_cast<unsigned char>(0xff00u >> take);
      if ((x[i] & mask) != (y[i] & mask)) return false;
      bits -= take;
    }
    return true;
  };
  if (a.is_v4()) return match(a.to_v4().to_bytes(), base.to_v4().to_bytes());
  return match(a.to_v6().to_bytes(), base.to_v6().to_bytes());
}

}  // namespace

std::string trusted_proxies::check(std::string_view entry) {
  const auto slash = entry.find('/');
  boost::system::error_code ec;
  const auto base = ip::make_address(std::string(entry.substr(0, slash)), ec);
  if (ec) return "must be an IP address or a CIDR network (10.0.0.0/8, fd00::/8)";
  if (slash == std::string_view::npos) return "";
  const auto bits = entry.substr(slash + 1);
  unsigned prefix = 0;
  const auto [end, err] = std::from_chars(bits.data(), bits.data() + bits.size(), prefix);
  const unsigned max = base.is_v4() ? 32 : 128;
  if (err != std::errc() || end != bits.data() + bits.size() || bits.empty() || prefix > max)
    return "has a prefix length that is not 0-" + std::to_string(max);
  return "";
}

boost::system::result<trusted_proxies, std::string> trusted_proxies::parse(
    const std::vector<std::string>& entries) {
  trusted_proxies out;
  for (const auto& e : entries) {
    if (auto problem = check(e); !problem.empty())
      return boost::system::result<trusted_proxies, std::string>(boost::system::in_place_error,
                                                                 "'" + e + "' " + problem);
    const auto slash = e.find('/');
    auto base = unmapped(ip::make_address(e.substr(0, slash)));
    unsigned prefix = base.is_v4() ? 32 : 128;
    if (slash != std::string::npos) {
      std::from_chars(e.data() + slash + 1, e.data() + e.size(), prefix);
      // A v4-mapped network ("::ffff:10.0.0.0/104") applies to the IPv4 addresses.
      if (base.is_v4() && ip::make_address(e.substr(0, slash)).is_v6())
        prefix = prefix >= 96 ? prefix - 96 : 0;
    }
    out.networks_.push_back({base, prefix});
  }
  return out;
}

bool trusted_proxies::contains(const ip::address& a) const {
  const auto plain = unmapped(a);
  return std::any_of(networks_.begin(), networks_.end(),
                     [&](const network& n) { return in_network(plain, n.base, n.prefix); });
}

ip::address client_address(const ip::address& peer, std::string_view forwarded_for,
                           const trusted_proxies& proxies) {
  auto client = unmapped(peer);
  if (!proxies.contains(client)) return client;
  // Right to left: each hop was appended by the proxy to its right, which we trust so far.
  while (!forwarded_for.empty()) {
    const auto comma = forwarded_for.rfind(',');
    const auto entry =
        comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1);
    forwarded_for =
        comma == std::string_view::npos ? std::string_view{} : forwarded_for.substr(0, comma);
    if (trim(entry).empty()) continue;  // "a, , b" or a trailing comma
    const auto hop = parse_entry(entry);
    if (!hop) break;
    client = *hop;
    if (!proxies.contains(client)) break;
  }
  return client;
}

std::string client_key(const ip::address& a) {
  const auto plain = unmapped(a);
  if (plain.is_v4()) return plain.to_string();
  auto bytes = plain.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace bellhop::gateway
