#include "bellhop/core/outbound_message.hpp"

#include <gtest/gtest.h>

namespace bellhop::gateway {
namespace {

const std::string staff_reply =
    R"({"id":"01JD0000000000000000000000","property_id":"hotel-berlin","channel":"whatsapp",)"
    R"("to":"+4915112345678","text":"Breakfast is from 7.","conversation_id":"c_0123",)"
    R"("reply_to":null,"priority":3,"idempotency_key":"staff:ana:m1","sent_by":"ana",)"
    R"("created_at":"2026-11-22T10:00:00.000Z","direction":"outbound"})";

normalized_outbound typed_staff_reply() {
  normalized_outbound f;
  f.msg.id = "01JD0000000000000000000000";
  f.msg.property_id = "hotel-berlin";
  f.msg.channel = "whatsapp";
  f.msg.to = "+4915112345678";
  f.msg.text = "Breakfast is from 7.";
  f.msg.conversation_id = "c_0123";
  f.msg.priority = 3;
  f.idempotency_key = "staff:ana:m1";
  f.sent_by = "ana";
  f.created_at = "2026-11-22T10:00:00.000Z";
  return f;
}

TEST(OutboundMessage, TypedFilingWritesWhatTheIntakeWritesOfTheSameElement) {
  normalized_outbound read;
  ASSERT_EQ(normalize_outbound(staff_reply, "whatsapp", read), "");
  auto typed = typed_staff_reply();
  ASSERT_EQ(file_outbound(typed, "whatsapp"), "");
  EXPECT_EQ(typed.json, read.json);
  EXPECT_EQ(outbound_digest(typed.json), outbound_digest(read.json));
}

TEST(OutboundMessage, ReadingBackDoesNotWriteAgain) {
  normalized_outbound filed;
  ASSERT_EQ(normalize_outbound(staff_reply, "whatsapp", filed), "");
  normalized_outbound back;
  ASSERT_EQ(read_outbound(filed.json, "whatsapp", back), "");
  EXPECT_TRUE(back.json.empty());
  EXPECT_EQ(back.msg.id, filed.msg.id);
  EXPECT_EQ(back.msg.text, filed.msg.text);
  EXPECT_EQ(back.msg.priority, 3);
  EXPECT_EQ(back.sent_by, "ana");
  EXPECT_EQ(back.created_at, filed.created_at);
}

TEST(OutboundMessage, TypedFilingRefusesAsTheIntakeDoes) {
  auto too_long = typed_staff_reply();
  too_long.msg.text.assign(65537, 'x');
  normalized_outbound read;
  const auto element_error = normalize_outbound(
      R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+49","text":")" +
          too_long.msg.text + "\"}",
      "whatsapp", read);
  EXPECT_EQ(file_outbound(too_long, "whatsapp"), element_error);
  EXPECT_EQ(too_long.refused, read.refused);
  EXPECT_TRUE(too_long.json.empty());

  auto other_queue = typed_staff_reply();
  EXPECT_EQ(file_outbound(other_queue, "sms"), "channel does not match the queue outbound:sms");
  auto no_property = typed_staff_reply();
  no_property.msg.property_id.clear();
  EXPECT_EQ(file_outbound(no_property, "whatsapp"), "property_id is missing or not a property id");
}

TEST(OutboundMessage, TheFirstFaultOfAnElementIsReported) {
  normalized_outbound f, g, h;
  // Attachments of the wrong type come after the text's length and before the priority.
  EXPECT_EQ(
      normalize_outbound(
          R"({"property_id":"p","to":"+1","text":"t","attachments":{},"priority":"x"})", "sms", f),
      "attachments must be an array");
  EXPECT_EQ(normalize_outbound(R"({"property_id":"p","to":"+1","text":"t","priority":11,)"
                               R"("delay_ms":-1})",
                               "sms", g),
            "priority must be an integer from 1 to 10");
  EXPECT_EQ(
      normalize_outbound(R"({"property_id":"p","to":"+1","text":"t","delay_ms":"soon"})", "sms", h),
      "delay_ms must be a non-negative integer");
}

}  // namespace
}  // namespace bellhop::gateway

namespace bellhop::gateway {
namespace {

const std::string engine_element =
    R"({"property_id":"hotel-berlin","channel":"whatsapp","to":"+4915112345678")";

TEST(OutboundMessage, SourceIsAiUnlessStaffAndOnlyStaffIsWritten) {
  normalized_outbound ai;
  ASSERT_EQ(normalize_outbound(engine_element + R"(,"text":"hi"})", "whatsapp", ai), "");
  EXPECT_EQ(ai.source, "ai");
  EXPECT_EQ(ai.json.find("\"source\""), std::string::npos) << ai.json;
  normalized_outbound staff;
  ASSERT_EQ(
      normalize_outbound(engine_element + R"(,"text":"hi","source":"staff"})", "whatsapp", staff),
      "");
  EXPECT_EQ(staff.source, "staff");
  EXPECT_NE(staff.json.find(R"("source":"staff")"), std::string::npos) << staff.json;
  normalized_outbound bad;
  EXPECT_EQ(normalize_outbound(engine_element + R"(,"text":"hi","source":"bot"})", "whatsapp", bad),
            "source must be \"ai\" or \"staff\"");
}

TEST(OutboundMessage, AHandoffMayComeAloneAndIsChecked) {
  normalized_outbound alone;
  ASSERT_EQ(
      normalize_outbound(engine_element + R"(,"handoff":{"reason":"refund","confidence":0.25}})",
                         "whatsapp", alone),
      "");
  ASSERT_TRUE(alone.handoff.has_value());
  EXPECT_EQ(alone.handoff->reason, "refund");
  EXPECT_EQ(alone.handoff->confidence, "0.25");
  EXPECT_FALSE(alone.has_message());

  normalized_outbound with_text;
  ASSERT_EQ(normalize_outbound(engine_element + R"(,"text":"A colleague will answer.",)"
                                                R"("handoff":{"reason":"refund"}})",
                               "whatsapp", with_text),
            "");
  EXPECT_TRUE(with_text.has_message());
  EXPECT_EQ(with_text.handoff->confidence, "");

  const std::vector<std::pair<std::string, std::string>> refused = {
      {R"("handoff":"yes")", "handoff must be an object"},
      {R"("handoff":{})", "handoff.reason must be a non-empty string"},
      {R"("handoff":{"reason":""})", "handoff.reason must be a non-empty string"},
      {R"("handoff":{"reason":"x","confidence":2})",
       "handoff.confidence must be a number from 0 to 1"},
      {R"("handoff":{"reason":"x","confidence":"high"})",
       "handoff.confidence must be a number from 0 to 1"},
      {R"("handoff":{"reason":")" + std::string(501, 'x') + "\"}",
       "handoff.reason is longer than 500 bytes"},
  };
  for (const auto& [field, why] : refused) {
    normalized_outbound f;
    EXPECT_EQ(normalize_outbound(engine_element + "," + field + "}", "whatsapp", f), why) << field;
  }
  normalized_outbound nothing;
  EXPECT_EQ(normalize_outbound(engine_element + "}", "whatsapp", nothing),
            "text or attachments is required");
}

}  // namespace
}  // namespace bellhop::gateway
