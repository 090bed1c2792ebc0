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
