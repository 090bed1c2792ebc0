#include "bellhop/channels/form.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace bellhop::channels {
namespace {

using ::testing::HasSubstr;

form_fields parsed(std::string_view body) {
  auto r = parse_form(body);
  EXPECT_TRUE(r.has_value()) << "'" << body << "': " << (r ? "" : r.error().message);
  return r ? *r : form_fields{};
}

TEST(parse_form, empty_body_has_no_fields) {
  EXPECT_TRUE(parsed("").empty());
}

TEST(parse_form, keeps_the_order_of_fields) {
  EXPECT_EQ(parsed("b=2&a=1&c=3"), (form_fields{{"b", "2"}, {"a", "1"}, {"c", "3"}}));
}

TEST(parse_form, plus_is_a_space_in_names_and_values) {
  EXPECT_EQ(parsed("first+name=Ada+Lovelace"), (form_fields{{"first name", "Ada Lovelace"}}));
}

TEST(parse_form, percent_escapes_decode_to_bytes) {
  EXPECT_EQ(parsed("a=%20"), (form_fields{{"a", " "}}));
  EXPECT_EQ(parsed("a=%2B"), (form_fields{{"a", "+"}}));
  EXPECT_EQ(parsed("a=%2b%2f%3D%26"), (form_fields{{"a", "+/=&"}}));
  EXPECT_EQ(parsed("%41%62c=x"), (form_fields{{"Abc", "x"}}));
  EXPECT_EQ(parsed("t=Fr%C3%BChst%C3%BCck"), (form_fields{{"t", "Frühstück"}}));
  EXPECT_EQ(parsed("nul=a%00b"), (form_fields{{"nul", std::string("a\0b", 3)}}));
  EXPECT_EQ(parsed("raw=%FF"), (form_fields{{"raw", "\xFF"}}));  // bytes, not checked for UTF-8
}

TEST(parse_form, escaped_plus_and_literal_plus_differ) {
  EXPECT_EQ(parsed("To=+15551234567&From=%2B15557654321"),
            (form_fields{{"To", " 15551234567"}, {"From", "+15557654321"}}));
}

TEST(parse_form, empty_values) {
  EXPECT_EQ(parsed("a=&b=&c=3"), (form_fields{{"a", ""}, {"b", ""}, {"c", "3"}}));
}

TEST(parse_form, names_without_equals_sign_have_empty_values) {
  EXPECT_EQ(parsed("flag&x=1&other"), (form_fields{{"flag", ""}, {"x", "1"}, {"other", ""}}));
}

TEST(parse_form, value_keeps_later_equals_signs) {
  EXPECT_EQ(parsed("a=b=c&=v"), (form_fields{{"a", "b=c"}, {"", "v"}}));
}

TEST(parse_form, repeated_names_are_kept_in_order) {
  EXPECT_EQ(
      parsed("MediaUrl=one&To=x&MediaUrl=two&MediaUrl=one"),
      (form_fields{{"MediaUrl", "one"}, {"To", "x"}, {"MediaUrl", "two"}, {"MediaUrl", "one"}}));
}

TEST(parse_form, empty_pieces_are_skipped) {
  EXPECT_EQ(parsed("&&a=1&&b=2&"), (form_fields{{"a", "1"}, {"b", "2"}}));
  EXPECT_TRUE(parsed("&").empty());
}

TEST(parse_form, invalid_escape_is_an_error_with_its_offset) {
  auto r = parse_form("x=1&y=%zz");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().offset, 6u);
  EXPECT_THAT(r.error().message, HasSubstr("offset 6"));
}

TEST(parse_form, truncated_escapes_are_errors) {
  for (std::string_view body :
       {"a=%4", "a=%", "a=%4&b=1", "%4=x", "%=x", "a=%%41", "a=%G1", "a=%1G", "a=b%"}) {
    auto r = parse_form(body);
    EXPECT_FALSE(r.has_value()) << body;
  }
}

TEST(parse_form, error_offset_points_into_the_name) {
  auto r = parse_form("ok=1&b%x=2");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().offset, 6u);
}

TEST(parse_form, value_throws_on_error) {
  auto r = parse_form("a=%zz");
  EXPECT_THROW((void)r.value(), std::invalid_argument);
}

TEST(form_value, returns_the_first_value) {
  const form_fields f{{"a", "1"}, {"b", ""}, {"a", "2"}};
  ASSERT_NE(form_value(f, "a"), nullptr);
  EXPECT_EQ(*form_value(f, "a"), "1");
  ASSERT_NE(form_value(f, "b"), nullptr);
  EXPECT_EQ(*form_value(f, "b"), "");
  EXPECT_EQ(form_value(f, "c"), nullptr);
  EXPECT_EQ(form_value(f, "A"), nullptr);  // names are case-sensitive
}

TEST(form_encode, keeps_only_unreserved_characters) {
  EXPECT_EQ(form_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(form_encode("a b+c/d&e=f%g"), "a%20b%2Bc%2Fd%26e%3Df%25g");
  EXPECT_EQ(form_encode("Frühstück"), "Fr%C3%BChst%C3%BCck");
  EXPECT_EQ(form_encode(std::string("\0\x7f\xff", 3)), "%00%7F%FF");
  EXPECT_EQ(form_encode(""), "");
}

TEST(form_encode, every_byte_round_trips) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const auto encoded = form_encode(all);
  for (char c : encoded) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
    EXPECT_TRUE(ok) << "unexpected '" << c << "' in the encoding";
  }
  EXPECT_EQ(parsed("v=" + encoded), (form_fields{{"v", all}}));
}

TEST(encode_form, round_trips_through_parse_form) {
  const form_fields f{{"To", "+4915112345678"},
                      {"Body", "Zimmer 12 & Frühstück = 7–10 Uhr, 100% +extra"},
                      {"empty", ""},
                      {"a=b&c", "d"},
                      {"MediaUrl", "https://x.example/a?b=c&d=e"},
                      {"MediaUrl", "https://x.example/2"}};
  const auto body = encode_form(f);
  EXPECT_EQ(body.find(' '), std::string::npos);
  EXPECT_EQ(body.find('+'), std::string::npos);
  EXPECT_EQ(parsed(body), f);
}

TEST(encode_form, exact_output) {
  EXPECT_EQ(encode_form({{"To", "+1 555"}, {"Body", "a&b"}}), "To=%2B1%20555&Body=a%26b");
  EXPECT_EQ(encode_form({}), "");
}

}  // namespace
}  // namespace bellhop::channels
