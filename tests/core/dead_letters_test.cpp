// The admin API's dead-letter listing: the limit parameter and each shape an element of a dead
// list may have (docs/console.md, "Admin API").
#include "bellhop/core/dead_letters.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <string>

namespace bellhop::gateway {
namespace {

rapidjson::Document letter(std::string_view element) {
  rapidjson::StringBuffer b;
  json::writer w(b);
  write_dead_letter(w, element);
  rapidjson::Document d;
  d.Parse(b.GetString(), b.GetSize());
  EXPECT_TRUE(d.IsObject()) << b.GetString();
  return d;
}

TEST(DeadLettersLimit, DefaultsBoundsAndRefusals) {
  EXPECT_EQ(*dead_letters_limit("/v1/admin/inbound/dead"), 50);
  EXPECT_EQ(*dead_letters_limit("/v1/admin/inbound/dead?"), 50);
  EXPECT_EQ(*dead_letters_limit("/x?limit=1"), 1);
  EXPECT_EQ(*dead_letters_limit("/x?limit=200"), 200);
  for (const char* t :
       {"/x?limit=0", "/x?limit=201", "/x?limit=-1", "/x?limit=99999999999999999999999"}) {
    const auto r = dead_letters_limit(t);
    ASSERT_FALSE(r) << t;
    EXPECT_EQ(r.error().status, 422) << t;
    EXPECT_EQ(r.error().code, "out_of_range") << t;
  }
  for (const char* t : {"/x?limit=", "/x?limit=a", "/x?limit=1.5", "/x?limit=1&limit=1",
                        "/x?limit= 1", "/x?before=1"}) {
    const auto r = dead_letters_limit(t);
    ASSERT_FALSE(r) << t;
    EXPECT_EQ(r.error().status, 400) << t;
  }
}

TEST(DeadLetter, AnOutboundLetterGivesItsFieldsAndItsMessage) {
  const auto d = letter(
      R"({"message":{"id":"01A","channel":"sms","text":"hi","attachments":[]},"reason":"nope",)"
      R"("error_code":"21211","attempts":3,"failed_at":"2026-01-01T00:00:00Z"})");
  EXPECT_STREQ(d["id"].GetString(), "01A");
  EXPECT_STREQ(d["reason"].GetString(), "nope");
  EXPECT_EQ(d["attempts"].GetInt(), 3);
  EXPECT_STREQ(d["failed_at"].GetString(), "2026-01-01T00:00:00Z");
  EXPECT_STREQ(d["message"]["text"].GetString(), "hi");
  EXPECT_TRUE(d["message"]["attachments"].IsArray());  // as written, not {} for []
  EXPECT_FALSE(d.HasMember("element"));
}

TEST(DeadLetter, AQuotedUnreadableMessageIsShownAsTheElement) {
  const auto d = letter(R"({"message":"{not json","reason":"unreadable","attempts":"x"})");
  EXPECT_TRUE(d["id"].IsNull());
  EXPECT_TRUE(d["message"].IsNull());
  EXPECT_TRUE(d["attempts"].IsNull());  // not a number: null
  EXPECT_TRUE(d["failed_at"].IsNull());
  EXPECT_STREQ(d["element"].GetString(), "{not json");
}

TEST(DeadLetter, AnInboundEnvelopeIsTheMessage) {
  const auto d = letter(R"({"id":"01B","text":"hello"})");
  EXPECT_STREQ(d["id"].GetString(), "01B");
  EXPECT_TRUE(d["reason"].IsNull());
  EXPECT_STREQ(d["message"]["text"].GetString(), "hello");
}

TEST(DeadLetter, WhatIsNotJsonIsCutAndMadeValidUtf8) {
  EXPECT_STREQ(letter("plain")["element"].GetString(), "plain");
  EXPECT_EQ(std::string(letter("bad\xff")["element"].GetString()), "bad\xEF\xBF\xBD");
  // Nested past the parser's depth: not JSON as far as Bellhop reads it.
  const std::string deep = std::string(100, '[') + std::string(100, ']');
  EXPECT_EQ(std::string(letter(deep)["element"].GetString()), deep);
  // Over 8 KiB: cut, never inside a character ("é" is two bytes; 8191 'a's put one across).
  std::string long_text = std::string(8191, 'a');
  for (int i = 0; i < 100; ++i) long_text += "\xC3\xA9";
  const std::string shown = letter(long_text)["element"].GetString();
  EXPECT_EQ(shown, std::string(8191, 'a'));
}

}  // namespace
}  // namespace bellhop::gateway
