// The byte encodings and secret helpers every module uses: RFC 4648 test vectors, round trips
// and the comparisons' answers.
#include "bellhop/contract/encoding.hpp"

#include <gtest/gtest.h>

#include <string>

#include "bellhop/contract/secrets.hpp"

namespace bellhop::contract {
namespace {

TEST(Encoding, HexIsLowerCaseTwoDigitsPerByte) {
  EXPECT_EQ(to_hex(""), "");
  EXPECT_EQ(to_hex(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
}

TEST(Encoding, HexDecodesEitherCaseAndRefusesTheRest) {
  EXPECT_EQ(from_hex("00017F80abFF"), std::string("\x00\x01\x7f\x80\xab\xff", 6));
  EXPECT_EQ(from_hex(""), "");
  EXPECT_FALSE(from_hex("abc"));
  EXPECT_FALSE(from_hex("0g"));
  EXPECT_FALSE(from_hex(" 0"));
  const std::string all = [] {
    std::string s;
    for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
    return s;
  }();
  EXPECT_EQ(from_hex(to_hex(all)), all);
}

TEST(Encoding, Base64MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [in, out] : vectors) EXPECT_EQ(to_base64(in), out) << in;
  EXPECT_EQ(to_base64("\xfb\xff"), "+/8=");
}

TEST(Encoding, Base64urlHasNoPaddingAndTheUrlAlphabet) {
  EXPECT_EQ(to_base64url(""), "");
  EXPECT_EQ(to_base64url("f"), "Zg");
  EXPECT_EQ(to_base64url("fo"), "Zm8");
  EXPECT_EQ(to_base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(to_base64url("\xfb\xff"), "-_8");
}

TEST(Secrets, RandomSecretsAre43UrlSafeCharactersAndDiffer) {
  const auto a = random_secret();
  const auto b = random_secret();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->size(), 43u);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(
      a->find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos);
  EXPECT_EQ(random_bytes(16)->size(), 16u);
}

TEST(Secrets, ComparisonsAnswerEquality) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(secrets_equal("a long secret", "a long secret"));
  EXPECT_FALSE(secrets_equal("a long secret", "a long secret "));
  EXPECT_FALSE(secrets_equal("a long secret", "A long secret"));
}

}  // namespace
}  // namespace bellhop::contract
