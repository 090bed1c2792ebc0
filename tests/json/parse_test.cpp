#include "bellhop/json/parse.hpp"

#include <gtest/gtest.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace bellhop::json {
namespace {

std::string nested(std::size_t depth, char open = '[', char close = ']') {
  return std::string(depth, open) + std::string(depth, close);
}

TEST(JsonParse, AcceptsADocumentAndKeepsItsValues) {
  rapidjson::Document doc;
  const auto r = parse(R"({"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":"d"}})", doc);
  ASSERT_TRUE(r) << r.message();
  ASSERT_TRUE(doc.IsObject());
  EXPECT_EQ(doc["a"].Size(), 6u);
  EXPECT_EQ(doc["a"][1].GetInt(), -2);
  EXPECT_EQ(std::string(doc["a"][5].GetString()), "x\xc3\xa9");
  EXPECT_EQ(std::string(doc["b"]["c"].GetString()), "d");
}

TEST(JsonParse, DepthLimitCountsTheRootAsLevelOne) {
  rapidjson::Document doc;
  EXPECT_TRUE(parse(nested(32), doc, {.max_depth = 32}));
  const auto r = parse(nested(33), doc, {.max_depth = 32});
  EXPECT_EQ(r.code, error::too_deep);
  EXPECT_TRUE(doc.IsNull());
  EXPECT_EQ(parse(nested(3, '{', '}'), doc, {.max_depth = 2}).code, error::syntax)
      << "{{{}}} is not JSON (keys are missing)";
  EXPECT_EQ(parse(R"({"a":{"b":{"c":1}}})", doc, {.max_depth = 2}).code, error::too_deep);
  EXPECT_TRUE(parse(R"({"a":{"b":1}})", doc, {.max_depth = 2}));
}

// A million levels: the recursive parser and any recursive walk of the result would overflow
// the stack (8 MB main thread, smaller on others); here it is refused at level 33.
TEST(JsonParse, AMillionLevelsAreRefusedWithoutTouchingTheStack) {
  rapidjson::Document doc;
  const auto deep = nested(1'000'000);
  const auto r = parse(deep, doc, {.max_bytes = deep.size()});
  EXPECT_EQ(r.code, error::too_deep);
  EXPECT_EQ(r.offset, 32u);  // the 33rd bracket
  const auto objects = std::string(1'000'000, '{');
  EXPECT_EQ(parse(objects, doc, {.max_bytes = objects.size()}).code, error::syntax);
  std::string keyed;
  for (int i = 0; i < 200'000; ++i) keyed += R"({"a":)";
  EXPECT_EQ(parse(keyed, doc, {.max_bytes = keyed.size()}).code, error::too_deep);
}

TEST(JsonParse, SizeLimitRefusesBeforeParsing) {
  rapidjson::Document doc;
  const std::string text = R"({"a":")" + std::string(100, 'x') + R"("})";
  EXPECT_TRUE(parse(text, doc, {.max_bytes = text.size()}));
  const auto r = parse(text, doc, {.max_bytes = text.size() - 1});
  EXPECT_EQ(r.code, error::too_large);
  EXPECT_TRUE(doc.IsNull());
}

TEST(JsonParse, InvalidUtf8IsRefusedInStringsAndKeys) {
  rapidjson::Document doc;
  for (const std::string& bad : {std::string("\"\xff\""), std::string("\"\xc0\xaf\""),  // overlong
                                 std::string("\"\xed\xa0\x80\""),                       // surrogate
                                 std::string("{\"\xe2\x82\":1}"),  // truncated sequence in a key
                                 std::string("\"\xf4\x90\x80\x80\"")}) {  // above U+10FFFF
    const auto r = parse(bad, doc);
    EXPECT_EQ(r.code, error::invalid_utf8) << to_string(r.code);
  }
  EXPECT_TRUE(parse("\"\xf0\x9f\x9b\x8e\"", doc));  // a valid 4-byte sequence
}

// Found by fuzz/fuzz_json: RapidJSON checks the bytes of the text, not what an escape decodes
// to, and turns a lone low surrogate escape into bytes that are not UTF-8.
TEST(JsonParse, EscapedLoneSurrogatesAreRefused) {
  rapidjson::Document doc;
  for (const std::string& bad :
       {std::string(R"("\udc4d")"), std::string(R"(["a\uDFFFb"])"), std::string(R"({"\udc00":1})"),
        std::string(R"("\ud83d\udc4d\udc4d")")}) {
    const auto r = parse(bad, doc);
    EXPECT_EQ(r.code, error::invalid_utf8) << bad;
    EXPECT_TRUE(doc.IsNull());
  }
  EXPECT_FALSE(parse(R"("\ud83d")", doc));  // a lone high surrogate: RapidJSON refuses it
  ASSERT_TRUE(parse(R"("\ud83d\udc4d \u00e9 \uffff")", doc));  // a pair and other escapes
  EXPECT_EQ(std::string(doc.GetString()), "\xf0\x9f\x91\x8d \xc3\xa9 \xef\xbf\xbf");
}

// Found by fuzz/fuzz_json: RapidJSON reads "2e308" as infinity without an error, and its writer
// then stops at it, leaving half a document.
TEST(JsonParse, NumbersBeyondDoubleAreRefused) {
  rapidjson::Document doc;
  for (const char* big : {"2e308", "[1,-2e308]", "{\"a\":1e400}", "1e99999999999"}) {
    const auto r = parse(big, doc);
    EXPECT_EQ(r.code, error::syntax) << big;
    EXPECT_EQ(r.detail, "Number too big to be stored in double.") << big;
    EXPECT_TRUE(doc.IsNull());
  }
  ASSERT_TRUE(parse("[1.7976931348623157e308,-1e-400,4.9e-324]", doc));
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  EXPECT_TRUE(doc.Accept(w));
}

TEST(JsonParse, SyntaxErrorsAndTrailingDataAreRefused) {
  rapidjson::Document doc;
  for (const char* bad : {"", " ", "{", "[1,]", "{\"a\":1,}", "{} {}", "nul", "01", "\"a",
                          "{\"a\" 1}", "[1] x", "// c\n{}"}) {
    const auto r = parse(bad, doc);
    EXPECT_EQ(r.code, error::syntax) << "'" << bad << "' gave " << to_string(r.code);
    EXPECT_FALSE(r.message().empty());
  }
}

TEST(JsonParse, CommentsAndTrailingCommasOnlyWhenAsked) {
  rapidjson::Document doc;
  const char* text = "// the config\n{\"a\": [1, 2,], /* b */ \"b\": 2,}";
  EXPECT_EQ(parse(text, doc).code, error::syntax);
  ASSERT_TRUE(parse(text, doc, {.comments = true}));
  EXPECT_EQ(doc["b"].GetInt(), 2);
  EXPECT_EQ(parse(nested(40), doc, {.max_depth = 32, .comments = true}).code, error::too_deep);
}

TEST(JsonParse, MessageNeverQuotesTheInput) {
  rapidjson::Document doc;
  const std::string secret = "[\"" + std::string(5000, 's') + "\" x]";
  const auto r = parse(secret, doc);
  ASSERT_EQ(r.code, error::syntax);
  EXPECT_LT(r.message().size(), 120u);
  EXPECT_EQ(r.message().find("sss"), std::string::npos);
}

TEST(JsonParse, TheDocumentCanBeReusedAfterAFailure) {
  rapidjson::Document doc;
  ASSERT_FALSE(parse(nested(100), doc));
  ASSERT_TRUE(parse("[[1]]", doc));
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  doc.Accept(writer);
  EXPECT_STREQ(out.GetString(), "[[1]]");
}

}  // namespace
}  // namespace bellhop::json
