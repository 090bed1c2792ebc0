#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/system/result.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bellhop::gateway {

// The proxies whose X-Forwarded-For Bellhop believes (config http.trusted_proxies): addresses
// and CIDR networks, IPv4 or IPv6. Empty (the default): no header is believed.
class trusted_proxies {
 public:
  trusted_proxies() = default;
  // "10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8". The error names the entry that is wrong.
  static boost::system::result<trusted_proxies, std::string> parse(
      const std::vector<std::string>& entries);
  // Why one entry is not an address or a network ("" if it is one): for config checks.
  static std::string check(std::string_view entry);

  bool contains(const boost::asio::ip::address& a) const;
  bool empty() const { return networks_.empty(); }

 private:
  struct network {
    boost::asio::ip::address base;
    unsigned prefix = 0;  // bits
  };
  std::vector<network> networks_;
};

// Who a request comes from: the peer's address; or, when the peer is a trusted proxy, the
// right-most address of X-Forwarded-For (`forwarded_for`, all its fields joined by ",") that is
// not itself a trusted proxy. An entry that is not an address ends the walk: the last address
// seen before it (to its right) is the answer, since nothing further left can be believed.
// IPv4-mapped IPv6 addresses are answered as IPv4.
boost::asio::ip::address client_address(const boost::asio::ip::address& peer,
                                        std::string_view forwarded_for,
                                        const trusted_proxies& proxies);

// The key per-client limits count under: an IPv4 address as text, or an IPv6 address's /64
// network ("2001:db8:1:2::/64"), since one subscriber commonly holds a whole /64.
std::string client_key(const boost::asio::ip::address& a);

}  // namespace bellhop::gateway
