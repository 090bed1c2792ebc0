#include "bellhop/core/poison.hpp"

#include <gtest/gtest.h>

namespace bellhop::gateway {
namespace {

TEST(ValidUtf8, KeepsValidTextAsIs) {
  const std::string text = "plain, caf\xC3\xA9, \xE2\x82\xAC, \xF0\x9F\x98\x80, \x7F";
  EXPECT_EQ(valid_utf8(text), text);
  EXPECT_EQ(valid_utf8(""), "");
  EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(ValidUtf8, ReplacesEachInvalidByte) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(valid_utf8("\xFF\xFE"), r + r);
  EXPECT_EQ(valid_utf8("a\x80z"), "a" + r + "z");            // a lone continuation byte
  EXPECT_EQ(valid_utf8("\xC0\xAF"), r + r);                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xE0\x80\xAF"), r + r + r);          // overlong, 3 bytes
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), r + r + r);          // a surrogate
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), r + r + r + r);  // above U+10FFFF
  EXPECT_EQ(valid_utf8("x\xE2\x82"), "x" + r + r);           // cut short at the end
  EXPECT_EQ(valid_utf8("\xC3\xA9\xC3"), "\xC3\xA9" + r);
}

TEST(PoisonReason, NamesTheParseErrorOrNotAnObject) {
  rapidjson::Document d;
  EXPECT_EQ(poison_reason(json::parse("[1]", d)), "not_object");
  EXPECT_EQ(poison_reason(json::parse(std::string(100, '['), d)), "too_deep");
  EXPECT_EQ(poison_reason(json::parse("{\"a\":\"\xFF\"}", d)), "invalid_utf8");
  EXPECT_EQ(poison_reason(json::parse("nope", d)), "syntax");
  EXPECT_EQ(poison_reason(json::parse("{}", d, {.max_bytes = 1})), "too_large");
}

}  // namespace
}  // namespace bellhop::gateway
