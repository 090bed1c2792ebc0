#include "bellhop/broker/reply.hpp"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstring>

namespace bellhop::broker {
namespace {

// Builds replies with hiredis's own parser, as the broker receives them.
reply parse(const std::string& wire) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, wire.data(), wire.size());
  void* raw = nullptr;
  EXPECT_EQ(redisReaderGetReply(reader, &raw), REDIS_OK);
  EXPECT_NE(raw, nullptr);
  reply out = reply::from_hiredis(*static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  redisReaderFree(reader);
  return out;
}

TEST(Reply, Scalars) {
  EXPECT_EQ(parse("+OK\r\n"), reply::make_status("OK"));
  EXPECT_EQ(parse("-ERR wrong\r\n"), reply::make_error("ERR wrong"));
  EXPECT_EQ(parse(":-42\r\n"), reply::make_integer(-42));
  EXPECT_TRUE(parse("$-1\r\n").is_nil());
  EXPECT_TRUE(parse("*-1\r\n").is_nil());
}

TEST(Reply, BinarySafeStrings) {
  std::string payload("a\0b\r\nc", 6);
  reply r = parse("$6\r\n" + payload + "\r\n");
  ASSERT_TRUE(r.is_string());
  EXPECT_EQ(r.str(), payload);
}

TEST(Reply, NestedArraysOutliveTheHiredisReply) {
  reply r = parse("*3\r\n$7\r\nmessage\r\n*2\r\n:1\r\n$-1\r\n$5\r\nhello\r\n");
  ASSERT_TRUE(r.is_array());
  ASSERT_EQ(r.elements().size(), 3u);
  EXPECT_EQ(r.elements()[0].str(), "message");
  ASSERT_TRUE(r.elements()[1].is_array());
  EXPECT_EQ(r.elements()[1].elements()[0].integer(), 1);
  EXPECT_TRUE(r.elements()[1].elements()[1].is_nil());
  EXPECT_EQ(r.elements()[2].str(), "hello");
  EXPECT_EQ(r.to_string(), "[\"message\", [(integer) 1, (nil)], \"hello\"]");
}

TEST(Reply, EmptyArray) {
  reply r = parse("*0\r\n");
  ASSERT_TRUE(r.is_array());
  EXPECT_TRUE(r.elements().empty());
}

}  // namespace
}  // namespace bellhop::broker
