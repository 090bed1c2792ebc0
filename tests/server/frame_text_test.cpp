// The UTF-8 check in front of every WebSocket text frame built from Redis.
#include "bellhop/server/frame_text.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bellhop::server {
namespace {

TEST(frame_text, well_formed_utf8_is_valid) {
  for (const std::string& s : std::vector<std::string>{
           "", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x9B\x8E", "\xED\x9F\xBF",
           "\xEE\x80\x80", "\xF4\x8F\xBF\xBF", std::string("nul \0 inside", 12)})
    EXPECT_TRUE(is_valid_utf8(s)) << s;
}

TEST(frame_text, malformed_utf8_is_invalid) {
  for (const std::string& s : std::vector<std::string>{
           "\x80",              // a continuation byte alone
           "caf\xC3",           // cut short
           "caf\xC3\x28",       // lead byte without its continuation
           "\xC0\xAF",          // overlong '/'
           "\xE0\x80\xAF",      // overlong, 3 bytes
           "\xF0\x80\x80\xAF",  // overlong, 4 bytes
           "\xED\xA0\x80",      // a UTF-16 surrogate
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF5\x80\x80\x80",  // not a lead byte
           "\xFF",
       })
    EXPECT_FALSE(is_valid_utf8(s)) << s;
}

TEST(frame_text, refused_texts_are_counted) {
  const auto before = invalid_utf8_dropped();
  EXPECT_TRUE(frame_text_ok("{\"ok\":true}", "a test"));
  EXPECT_EQ(invalid_utf8_dropped(), before);
  EXPECT_FALSE(frame_text_ok("{\"x\":\"\xFF\"}", "a test"));
  EXPECT_EQ(invalid_utf8_dropped(), before + 1);
}

}  // namespace
}  // namespace bellhop::server
