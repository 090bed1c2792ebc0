#include "bellhop/contract/event.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>

namespace bellhop::contract {
namespace {

using namespace std::string_literals;

const event_envelope created{"hotel-berlin", "message.created",
                             R"({"id":"01JDQ8Y2C5R1T7B3N6M0K4W9XA","text":"hi"})",
                             "2026-11-27T21:00:00.123Z"};

std::string rapidjson_quoted(std::string_view s) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  return {b.GetString(), b.GetSize()};
}

TEST(EventEnvelope, StoredEventIsTheDocumentedLayout) {
  EXPECT_EQ(stored_event(1842, created),
            R"({"seq":1842,"property_id":"hotel-berlin","event":"message.created",)"
            R"("data":{"id":"01JDQ8Y2C5R1T7B3N6M0K4W9XA","text":"hi"},)"
            R"("ts":"2026-11-27T21:00:00.123Z"})");
}

TEST(EventEnvelope, FrameHasTypeFirstThenSeq) {
  EXPECT_EQ(event_frame(created, 7),
            R"({"type":"event","seq":7,"property_id":"hotel-berlin","event":"message.created",)"
            R"("data":{"id":"01JDQ8Y2C5R1T7B3N6M0K4W9XA","text":"hi"},)"
            R"("ts":"2026-11-27T21:00:00.123Z"})");
  // Ephemeral events (typing, presence): no seq.
  EXPECT_EQ(event_frame({"hotel-berlin", "typing", R"({"sub":"ben"})", "2026-11-27T21:00:39.002Z"},
                        std::nullopt),
            R"({"type":"event","property_id":"hotel-berlin","event":"typing",)"
            R"("data":{"sub":"ben"},"ts":"2026-11-27T21:00:39.002Z"})");
  // The frame of a stored event is the stored event with "type" in front.
  const auto stored = stored_event(7, created);
  EXPECT_EQ(event_frame(created, 7), R"({"type":"event",)" + stored.substr(1));
}

TEST(EventEnvelope, StringsAreEscapedAsRapidJsonEscapesThem) {
  // Every byte value, alone and inside text, in each string member.
  for (int c = 0; c < 256; ++c) {
    const std::string s = "a"s + static_cast<char>(c) + "b";
    const auto q = rapidjson_quoted(s);
    SCOPED_TRACE(c);
    EXPECT_EQ(stored_event(1, {s, "e", "{}", "t"}),
              R"({"seq":1,"property_id":)" + q + R"(,"event":"e","data":{},"ts":"t"})");
    EXPECT_EQ(
        event_frame({"p", s, "{}", s}, std::nullopt),
        R"({"type":"event","property_id":"p","event":)" + q + R"(,"data":{},"ts":)" + q + "}");
  }
  EXPECT_EQ(stored_event(1, {"\"\\/\n\x01\x7f", "e", "{}", "t"}),
            R"({"seq":1,"property_id":"\"\\/\n\u0001)"
            "\x7f"
            R"(","event":"e","data":{},"ts":"t"})");
}

TEST(EventEnvelope, DataIsWrittenAsIs) {
  const std::string data = R"({"text":"a \"quoted\" \u00e9 / ,\"ts\":\"x\""})";
  const auto stored = stored_event(3, {"p", "e", data, "t"});
  EXPECT_NE(stored.find(R"("data":)" + data + R"(,"ts":"t"})"), std::string::npos);
  rapidjson::Document d;
  d.Parse(stored.data(), stored.size());
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(d["seq"].GetUint64(), 3u);
  EXPECT_STREQ(d["data"]["text"].GetString(), "a \"quoted\" \u00e9 / ,\"ts\":\"x\"");
  EXPECT_STREQ(d["ts"].GetString(), "t");
}

TEST(EventEnvelope, ParseReadsBackWhatStoredEventWrites) {
  const auto stored = stored_event(18446744073709551615ull, created);
  const auto v = parse_stored_event(stored);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->seq, 18446744073709551615ull);
  EXPECT_EQ(v->envelope.property_id, created.property_id);
  EXPECT_EQ(v->envelope.event, created.event);
  EXPECT_EQ(v->envelope.data, created.data);
  EXPECT_EQ(v->envelope.ts, created.ts);
  EXPECT_EQ(event_frame(v->envelope, v->seq), event_frame(created, 18446744073709551615ull));
  EXPECT_EQ(event_frame(*v), event_frame(created, 18446744073709551615ull));
}

TEST(EventEnvelope, FrameOfWhatParseAcceptsIsTheFrameOfItsFields) {
  const std::string texts[] = {
      stored_event(1, created),
      stored_event(42, {"p", "e", "{}", ""}),
      stored_event(7, {"hotel-a", "note", R"({"a":[1,{"b":""}"}]})", "2026-11-27T21:00:00Z"}),
      R"({"seq":3,"property_id":"p","event":"e","data":{ "x" : 1 },"ts":"t"})",
  };
  for (const auto& text : texts) {
    const auto v = parse_stored_event(text);
    ASSERT_TRUE(v) << text;
    EXPECT_EQ(event_frame(*v), event_frame(v->envelope, v->seq)) << text;
  }
}

TEST(EventEnvelope, ParseTakesTsFromTheEndNotFromInsideData) {
  const std::string data = R"({"text":",\"ts\":\"1999-01-01T00:00:00Z\"}"})";
  // The parsed view points into the stored text: it must outlive the view.
  const std::string text = stored_event(5, {"p", "e", data, "2026-11-27T21:00:00Z"});
  const auto v = parse_stored_event(text);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->envelope.data, data);
  EXPECT_EQ(v->envelope.ts, "2026-11-27T21:00:00Z");
}

TEST(EventEnvelope, ParseRefusesAnythingButTheLayout) {
  const std::string good = stored_event(9, created);
  ASSERT_TRUE(parse_stored_event(good));
  const std::string bad[] = {
      "",
      "{}",
      R"({"seq":9})",
      R"({"seq":09,"property_id":"p","event":"e","data":{},"ts":"t"})",
      R"({"seq":-9,"property_id":"p","event":"e","data":{},"ts":"t"})",
      R"({"seq":18446744073709551616,"property_id":"p","event":"e","data":{},"ts":"t"})",
      R"({"seq":9 ,"property_id":"p","event":"e","data":{},"ts":"t"})",
      R"({"seq":9,"event":"e","property_id":"p","data":{},"ts":"t"})",
      R"({"seq":9,"property_id":p,"event":"e","data":{},"ts":"t"})",
      R"({"seq":9,"property_id":"p\"q","event":"e","data":{},"ts":"t"})",
      R"({"seq":9,"property_id":"p","event":"e\n","data":{},"ts":"t"})",
      "{\"seq\":9,\"property_id\":\"p\x01\",\"event\":\"e\",\"data\":{},\"ts\":\"t\"}",
      R"({"seq":9,"property_id":"p","event":"e","data":[],"ts":"t"})",
      R"({"seq":9,"property_id":"p","event":"e","data":,"ts":"t"})",
      R"({"seq":9,"property_id":"p","event":"e","data":{},"ts":"t\""})",
      R"({"seq":9,"property_id":"p","event":"e","data":{},"ts":1})",
      R"({"seq":9,"property_id":"p","event":"e","data":{},"ts":"t"} )",
      R"({"seq":9,"property_id":"p","event":"e","data":{},"ts":"t","x":1})",
      R"({"seq":9,"property_id":"p","event":"e","data":{}})",
      R"({"seq":9,"property_id":"p","event":"e","data":{},"t":"t"})",
      R"({"type":"event","seq":9,"property_id":"p","event":"e","data":{},"ts":"t"})",
      good.substr(0, good.size() - 1),
      good.substr(0, good.size() / 2),
  };
  for (const auto& text : bad) EXPECT_FALSE(parse_stored_event(text)) << text;
}

}  // namespace
}  // namespace bellhop::contract
