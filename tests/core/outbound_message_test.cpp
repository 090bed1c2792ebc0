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

// ---- templates (WhatsApp) ---------------------------------------------------------------------

std::string with_template(const std::string& tmpl, const std::string& text = "",
                          const std::string& channel = "whatsapp") {
  return R"({"property_id":"hotel-berlin","channel":")" + channel + R"(","to":"+4915112345678",)" +
         (text.empty() ? "" : R"("text":")" + text + "\",") + R"("template":)" + tmpl + "}";
}

const std::string check_in = R"({"name":"check_in_reminder","language":"en_US","components":[)"
                             R"({"type":"body","parameters":[{"type":"text","text":"Ana"},)"
                             R"({"type":"text","text":"15:00","parameter_name":"time"}]},)"
                             R"({"type":"button","sub_type":"quick_reply","index":0,"parameters":[)"
                             R"({"type":"payload","payload":"late"}]}]})";

TEST(OutboundTemplate, ATemplateOnlyMessageIsFiledWithItsTemplate) {
  normalized_outbound f;
  ASSERT_EQ(normalize_outbound(with_template(check_in), "whatsapp", f), "");
  ASSERT_TRUE(f.msg.template_msg.has_value());
  const auto& t = *f.msg.template_msg;
  EXPECT_EQ(t.name, "check_in_reminder");
  EXPECT_EQ(t.language, "en_US");
  ASSERT_EQ(t.components.size(), 2u);
  EXPECT_EQ(t.components[0].parameters[1].parameter_name, "time");
  EXPECT_EQ(t.components[1].index, 0);
  EXPECT_EQ(t.components[1].parameters[0].value, "late");
  // Filed as Bellhop writes it (the index as Meta's examples give it), and read back the same.
  EXPECT_NE(
      f.json.find(R"("template":{"name":"check_in_reminder","language":"en_US",)"
                  R"("components":[{"type":"body","parameters":[{"type":"text","text":"Ana"},)"),
      std::string::npos)
      << f.json;
  normalized_outbound back;
  ASSERT_EQ(normalize_outbound(f.json, "whatsapp", back), "");
  EXPECT_EQ(back.json, f.json);
}

TEST(OutboundTemplate, TextWithATemplateKeepsBoth) {
  normalized_outbound f;
  ASSERT_EQ(normalize_outbound(with_template(R"({"name":"hello_world","language":"en"})", "Hi"),
                               "whatsapp", f),
            "");
  EXPECT_EQ(f.msg.text, "Hi");
  ASSERT_TRUE(f.msg.template_msg.has_value());
  EXPECT_TRUE(f.msg.template_msg->components.empty());
  EXPECT_NE(f.json.find(R"("template":{"name":"hello_world","language":"en"})"), std::string::npos);
}

TEST(OutboundTemplate, AButtonIndexMayBeAOneDigitString) {
  normalized_outbound f;
  ASSERT_EQ(normalize_outbound(
                with_template(R"({"name":"a","language":"en","components":[{"type":"button",)"
                              R"("sub_type":"url","index":"3","parameters":[)"
                              R"({"type":"text","text":"booking-42"}]}]})"),
                "whatsapp", f),
            "");
  EXPECT_EQ(f.msg.template_msg->components[0].index, 3);
  normalized_outbound g;
  EXPECT_NE(normalize_outbound(
                with_template(R"({"name":"a","language":"en","components":[{"type":"button",)"
                              R"("sub_type":"url","index":"03"}]})"),
                "whatsapp", g),
            "");
  EXPECT_EQ(g.refused_field, "template.components[0].index");
}

TEST(OutboundTemplate, NoTextNoAttachmentsNoTemplateIsRefused) {
  normalized_outbound f;
  EXPECT_EQ(normalize_outbound(R"({"property_id":"p","to":"+1"})", "whatsapp", f),
            "text, attachments or template is required");
  EXPECT_EQ(f.refused, "invalid");
}

TEST(OutboundTemplate, ATemplateOnAnotherChannelIsRefused) {
  normalized_outbound f;
  EXPECT_EQ(normalize_outbound(with_template(check_in, "Hi", "sms"), "", f),
            "template is for the whatsapp channel only");
  EXPECT_EQ(f.refused_field, "template");
}

struct bad_template {
  std::string tmpl, field;
};

TEST(OutboundTemplate, HostileTemplatesAreRefusedNamingTheField) {
  const std::string many_components = "[" + [] {
    std::string c;
    for (int i = 0; i < 11; ++i) c += std::string(i ? "," : "") + R"({"type":"body"})";
    return c;
  }() + "]";
  std::string many_parameters;
  for (int i = 0; i < 33; ++i)
    many_parameters += std::string(i ? "," : "") + R"({"type":"text","text":"x"})";
  const bad_template cases[] = {
      {R"("check_in")", "template"},
      {R"({"name":"Check-In","language":"en"})", "template.name"},
      {R"({"name":")" + std::string(513, 'a') + R"(","language":"en"})", "template.name"},
      {R"({"name":"","language":"en"})", "template.name"},
      {R"({"name":"a","language":"english"})", "template.language"},
      {R"({"name":"a","language":"en_us"})", "template.language"},
      {R"({"name":"a","language":7})", "template.language"},
      {R"({"name":"a","language":"en","extra":1})", "template"},
      {R"({"name":"a","language":"en","components":{}})", "template.components"},
      {R"({"name":"a","language":"en","components":)" + many_components + "}",
       "template.components"},
      {R"({"name":"a","language":"en","components":[{"type":"footer"}]})",
       "template.components[0].type"},
      {R"({"name":"a","language":"en","components":[{"type":"button","index":0}]})",
       "template.components[0].sub_type"},
      {R"({"name":"a","language":"en","components":[{"type":"button","sub_type":"url"}]})",
       "template.components[0].index"},
      {R"({"name":"a","language":"en","components":[{"type":"button","sub_type":"url","index":10}]})",
       "template.components[0].index"},
      {R"({"name":"a","language":"en","components":[{"type":"body","index":0}]})",
       "template.components[0].index"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)" +
           many_parameters + "]}]}",
       "template.components[0].parameters"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)"
       R"({"type":"image","image":{"link":"x"}}]}]})",
       "template.components[0].parameters[0].type"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)"
       R"({"type":"text","text":""}]}]})",
       "template.components[0].parameters[0].text"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)"
       R"({"type":"text","text":")" +
           std::string(1025, 'x') + R"("}]}]})",
       "template.components[0].parameters[0].text"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)"
       R"({"type":"text","text":"x","parameter_name":"Guest Name"}]}]})",
       "template.components[0].parameters[0].parameter_name"},
      {R"({"name":"a","language":"en","components":[{"type":"body","parameters":[)"
       R"({"type":"payload","payload":"x","text":"y"}]}]})",
       "template.components[0].parameters[0].text"},
  };
  for (const auto& c : cases) {
    normalized_outbound f;
    EXPECT_NE(normalize_outbound(with_template(c.tmpl, "Hi"), "whatsapp", f), "") << c.tmpl;
    EXPECT_EQ(f.refused, "invalid") << c.tmpl;
    EXPECT_EQ(f.refused_field, c.field) << c.tmpl;
  }
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
            "text, attachments or template is required");
}

}  // namespace
}  // namespace bellhop::gateway
