#include "bellhop/core/client_address.hpp"

#include <gtest/gtest.h>

namespace bellhop::gateway {
namespace {

namespace ip = boost::asio::ip;

trusted_proxies proxies(const std::vector<std::string>& entries) {
  auto p = trusted_proxies::parse(entries);
  EXPECT_TRUE(p.has_value()) << (p ? "" : p.error());
  return p ? *p : trusted_proxies{};
}

std::string client(std::string_view peer, std::string_view xff, const trusted_proxies& p) {
  return client_address(ip::make_address(std::string(peer)), xff, p).to_string();
}

TEST(ClientAddress, WithoutTrustedProxiesThePeerIsTheClientWhateverTheHeaderSays) {
  const trusted_proxies none;
  EXPECT_EQ(client("203.0.113.7", "", none), "203.0.113.7");
  EXPECT_EQ(client("203.0.113.7", "198.51.100.1", none), "203.0.113.7");
}

TEST(ClientAddress, AnUntrustedPeerCannotSpoofTheHeader) {
  const auto p = proxies({"10.0.0.0/8"});
  EXPECT_EQ(client("203.0.113.7", "10.1.2.3", p), "203.0.113.7");
  EXPECT_EQ(client("11.0.0.1", "198.51.100.1", p), "11.0.0.1");
}

TEST(ClientAddress, ATrustedProxysHeaderGivesTheRightMostUntrustedHop) {
  const auto p = proxies({"10.0.0.0/8", "192.0.2.10"});
  EXPECT_EQ(client("10.0.0.1", "198.51.100.1", p), "198.51.100.1");
  // The client may have written anything on the left; only the hops our proxies added count.
  EXPECT_EQ(client("10.0.0.1", "1.1.1.1, 198.51.100.1, 10.9.9.9, 192.0.2.10", p), "198.51.100.1");
  EXPECT_EQ(client("10.0.0.1", " 198.51.100.1 ,  ", p), "198.51.100.1");
  // Only proxies all the way: the left-most of them.
  EXPECT_EQ(client("10.0.0.1", "10.2.2.2, 10.3.3.3", p), "10.2.2.2");
  // No header from a proxy: the proxy itself.
  EXPECT_EQ(client("10.0.0.1", "", p), "10.0.0.1");
}

TEST(ClientAddress, GarbageEndsTheWalkAtTheLastBelievableHop) {
  const auto p = proxies({"10.0.0.0/8"});
  EXPECT_EQ(client("10.0.0.1", "198.51.100.1, unknown", p), "10.0.0.1");
  EXPECT_EQ(client("10.0.0.1", "not-an-ip, 10.4.4.4", p), "10.4.4.4");
  EXPECT_EQ(client("10.0.0.1", "198.51.100.1, 999.1.1.1", p), "10.0.0.1");
  EXPECT_EQ(client("10.0.0.1", std::string(10000, ','), p), "10.0.0.1");
  EXPECT_EQ(client("10.0.0.1", "\x01\xff[", p), "10.0.0.1");
}

TEST(ClientAddress, IPv6PortsAndMappedAddresses) {
  const auto p = proxies({"fd00::/8", "::ffff:10.0.0.0/104"});
  EXPECT_EQ(client("fd00::1", "2001:db8::7", p), "2001:db8::7");
  EXPECT_EQ(client("fd00::1", "[2001:db8::7]:443", p), "2001:db8::7");
  EXPECT_EQ(client("fd00::1", "198.51.100.1:5555", p), "198.51.100.1");
  EXPECT_EQ(client("::ffff:10.0.0.1", "198.51.100.1", p), "198.51.100.1");
  EXPECT_EQ(client("::ffff:203.0.113.7", "198.51.100.1", p), "203.0.113.7");
  EXPECT_EQ(client("2001:db8::1", "198.51.100.1", p), "2001:db8::1");
}

TEST(ClientAddress, BadProxyEntriesAreConfigErrors) {
  EXPECT_FALSE(trusted_proxies::parse({"10.0.0.0/33"}));
  EXPECT_FALSE(trusted_proxies::parse({"fd00::/129"}));
  EXPECT_FALSE(trusted_proxies::parse({"proxy.example"}));
  EXPECT_FALSE(trusted_proxies::parse({"10.0.0.0/"}));
  EXPECT_FALSE(trusted_proxies::parse({"10.0.0.0/8x"}));
  EXPECT_TRUE(trusted_proxies::parse({"0.0.0.0/0", "::/0", "127.0.0.1"}));
}

TEST(ClientAddress, KeysGroupAnIPv6SubscribersSlash64) {
  EXPECT_EQ(client_key(ip::make_address("203.0.113.7")), "203.0.113.7");
  EXPECT_EQ(client_key(ip::make_address("::ffff:203.0.113.7")), "203.0.113.7");
  EXPECT_EQ(client_key(ip::make_address("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
  EXPECT_EQ(client_key(ip::make_address("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
}

}  // namespace
}  // namespace bellhop::gateway
