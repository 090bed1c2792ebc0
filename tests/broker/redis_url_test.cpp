#include "bellhop/broker/redis_url.hpp"

#include <gtest/gtest.h>

namespace bellhop::broker {
namespace {

TEST(RedisUrl, HostPortDefaults) {
  auto ep = parse_redis_url("redis://cache.local");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->kind, redis_endpoint::transport::tcp);
  EXPECT_EQ(ep->host, "cache.local");
  EXPECT_EQ(ep->port, 6379);
  EXPECT_EQ(ep->db, 0);
  EXPECT_TRUE(ep->password.empty());
}

TEST(RedisUrl, CredentialsPortAndDb) {
  auto ep = parse_redis_url("redis://app:s%40cret@10.0.0.5:6380/3");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->user, "app");
  EXPECT_EQ(ep->password, "s@cret");
  EXPECT_EQ(ep->host, "10.0.0.5");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->db, 3);
  EXPECT_EQ(ep->redacted(), "redis://app:***@10.0.0.5:6380/3");
}

TEST(RedisUrl, PasswordOnly) {
  auto ep = parse_redis_url("redis://:pw@127.0.0.1:7000");
  ASSERT_TRUE(ep);
  EXPECT_TRUE(ep->user.empty());
  EXPECT_EQ(ep->password, "pw");
  EXPECT_EQ(ep->redacted().find("pw"), std::string::npos);
}

TEST(RedisUrl, Ipv6Host) {
  auto ep = parse_redis_url("redis://[::1]:6379");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->host, "::1");
  EXPECT_EQ(ep->redacted(), "redis://[::1]:6379");
}

TEST(RedisUrl, UnixSocket) {
  auto ep = parse_redis_url("unix:///var/run/redis/redis.sock?db=2&password=x");
  ASSERT_TRUE(ep);
  EXPECT_EQ(ep->kind, redis_endpoint::transport::unix_socket);
  EXPECT_EQ(ep->path, "/var/run/redis/redis.sock");
  EXPECT_EQ(ep->db, 2);
  EXPECT_EQ(ep->password, "x");
}

TEST(RedisUrl, Rejections) {
  for (const char* bad : {"", "localhost:6379", "http://x:1", "redis://", "redis://h:0",
                          "redis://h:70000", "redis://h:12ab", "redis://h/notanumber",
                          "unix://relative/path", "unix://host/path", "redis://h?foo=1",
                          "rediss://h:6380"}) {
    auto ep = parse_redis_url(bad);
    EXPECT_FALSE(ep) << bad;
    if (!ep) {
      EXPECT_FALSE(ep.error().message.empty());
    }
  }
}

TEST(RedisUrl, ErrorsNeverEchoThePassword) {
  auto ep = parse_redis_url("redis://u:topsecret@h:99999");
  ASSERT_FALSE(ep);
  EXPECT_EQ(ep.error().message.find("topsecret"), std::string::npos);
}

}  // namespace
}  // namespace bellhop::broker
