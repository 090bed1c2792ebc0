#include "bellhop/channels/whatsapp.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace bellhop::channels::whatsapp {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string app_secret = "7d3c1f0a9b8e4d2c6a5f1e0b9c8d7a6f";

settings test_settings() {
  return {app_secret, "hotel-berlin-verify", "EAAGm0PX4ZCpsBA-token", "106540352242922",
          "https://graph.facebook.com/v21.0"};
}

// The signature as an independent implementation computes it: Python's hmac over the body
// bytes, read from a file so that no shell quoting touches them.
std::string python_signature(const std::string& secret, const std::string& body) {
  static int counter = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("bellhop_wa_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  {
    std::ofstream f(path, std::ios::binary);
    f.write(body.data(), static_cast<std::streamsize>(body.size()));
  }
  const std::string cmd =
      "/usr/bin/python3 -c 'import hmac, hashlib, sys; "
      "print(hmac.new(sys.argv[1].encode(), open(sys.argv[2], \"rb\").read(), "
      "hashlib.sha256).hexdigest())' '" +
      secret + "' '" + path.string() + "'";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[256];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  std::filesystem::remove(path);
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  EXPECT_EQ(out.size(), 64u) << "python3 did not compute an HMAC: '" << out << "'";
  return "sha256=" + out;
}

webhook post(const std::string& body, const std::string& signature,
             const std::string& content_type = "application/json") {
  webhook w;
  w.method = "POST";
  w.target = "/v1/webhooks/whatsapp";
  w.headers["content-type"] = content_type;
  if (!signature.empty()) w.headers["x-hub-signature-256"] = signature;
  w.body = body;
  return w;
}

webhook signed_post(const std::string& body, const std::string& content_type = "application/json") {
  return post(body, python_signature(app_secret, body), content_type);
}

rapidjson::Document parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// A messages webhook as Meta sends it: one entry, one change, the given messages.
std::string envelope(const std::string& messages,
                     const std::string& contacts =
                         R"([{"profile":{"name":"Sheena Nelson"},"wa_id":"16505551234"}])") {
  return R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":)" +
         contacts + R"(,"messages":)" + messages + R"(},"field":"messages"}]}]})";
}

webhook_result parse_one(const std::string& message) {
  auto r = parse_webhook(test_settings(), signed_post(envelope("[" + message + "]")));
  EXPECT_EQ(r.status, 200) << r.error_code << ": " << r.error_message;
  EXPECT_EQ(r.messages.size(), 1u);
  return r;
}

// ---- POST: messages --------------------------------------------------------------------------

TEST(WhatsappWebhook, TakesATextMessage) {
  const auto body = envelope(
      R"([{"from":"16505551234","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}])");
  const auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_message;
  EXPECT_TRUE(r.statuses.empty());
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& m = r.messages[0];
  EXPECT_EQ(m.business, "106540352242922");
  EXPECT_EQ(m.channel, "whatsapp");
  EXPECT_EQ(m.external_id, "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
  EXPECT_EQ(m.from, "+16505551234");
  EXPECT_EQ(m.to, "+15550783881");
  EXPECT_EQ(m.guest_name, "Sheena Nelson");
  EXPECT_EQ(m.text, "Does it come in another color?");
  EXPECT_EQ(m.content_type, "text");
  EXPECT_EQ(m.attachments_json, "[]");
  EXPECT_EQ(m.sent_at, "2025-06-08T20:59:43Z");
  EXPECT_EQ(m.metadata_json, "{}");
}

TEST(WhatsappWebhook, TakesAnImageWithCaptionAndReplyContext) {
  const auto r = parse_one(
      R"({"context":{"from":"15550783881","id":"wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI1RjQ0QkM3MkFFOEQ5NUI4MTIA"},"from":"16505551234","id":"wamid.IMG1","timestamp":"1749416400","type":"image","image":{"caption":"The sink in room 412","mime_type":"image/jpeg","sha256":"+Mv+3rLjXgGdBJ5W2ysV5r0C/yjGiAc6fmZdIt0A3v4=","id":"1003383421387256"}})");
  const auto& m = r.messages[0];
  EXPECT_EQ(m.content_type, "image");
  EXPECT_EQ(m.text, "The sink in room 412");
  EXPECT_EQ(m.sent_at, "2025-06-08T21:00:00Z");
  auto a = parse(m.attachments_json);
  ASSERT_TRUE(a.IsArray());
  ASSERT_EQ(a.Size(), 1u);
  EXPECT_STREQ(a[0]["type"].GetString(), "image");
  EXPECT_STREQ(a[0]["id"].GetString(), "1003383421387256");
  EXPECT_STREQ(a[0]["mime_type"].GetString(), "image/jpeg");
  EXPECT_STREQ(a[0]["sha256"].GetString(), "+Mv+3rLjXgGdBJ5W2ysV5r0C/yjGiAc6fmZdIt0A3v4=");
  EXPECT_FALSE(a[0].HasMember("filename"));
  auto meta = parse(m.metadata_json);
  EXPECT_STREQ(meta["context_message_id"].GetString(),
               "wamid.HBgLMTU1NTA3ODM4ODEVAgARGBI1RjQ0QkM3MkFFOEQ5NUI4MTIA");
}

TEST(WhatsappWebhook, TakesADocumentWithFilenameAndAVoiceNote) {
  auto r = parse_webhook(
      test_settings(),
      signed_post(envelope(
          R"([{"from":"16505551234","id":"wamid.DOC","timestamp":"1749416400","type":"document","document":{"filename":"passport \"scan\".pdf","mime_type":"application/pdf","sha256":"abc=","id":"2233445566"}},
              {"from":"16505551234","id":"wamid.VOICE","timestamp":"1749416400","type":"audio","audio":{"mime_type":"audio/ogg; codecs=opus","sha256":"def=","id":"7788","voice":true}}])")));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].content_type, "document");
  EXPECT_EQ(r.messages[0].text, "");
  auto doc = parse(r.messages[0].attachments_json);
  EXPECT_STREQ(doc[0]["filename"].GetString(), "passport \"scan\".pdf");
  EXPECT_STREQ(doc[0]["type"].GetString(), "document");
  EXPECT_EQ(r.messages[1].content_type, "audio");
  auto audio = parse(r.messages[1].attachments_json);
  EXPECT_STREQ(audio[0]["mime_type"].GetString(), "audio/ogg; codecs=opus");
  EXPECT_TRUE(audio[0]["voice"].GetBool());
}

TEST(WhatsappWebhook, TakesALocation) {
  const auto r = parse_one(
      R"({"from":"16505551234","id":"wamid.LOC","timestamp":"1749416500","location":{"address":"Pariser Platz, 10117 Berlin","latitude":52.52,"longitude":13.405,"name":"Brandenburger Tor"},"type":"location"})");
  const auto& m = r.messages[0];
  EXPECT_EQ(m.content_type, "location");
  EXPECT_EQ(m.text, "Location: 52.52, 13.405 (Brandenburger Tor)");
  EXPECT_EQ(m.attachments_json, "[]");
  auto meta = parse(m.metadata_json);
  const auto& loc = meta["location"];
  EXPECT_DOUBLE_EQ(loc["latitude"].GetDouble(), 52.52);
  EXPECT_DOUBLE_EQ(loc["longitude"].GetDouble(), 13.405);
  EXPECT_STREQ(loc["name"].GetString(), "Brandenburger Tor");
  EXPECT_STREQ(loc["address"].GetString(), "Pariser Platz, 10117 Berlin");
}

TEST(WhatsappWebhook, TakesALocationPinWithoutName) {
  const auto r = parse_one(
      R"({"from":"16505551234","id":"wamid.PIN","timestamp":"1749416500","location":{"latitude":-33.8688,"longitude":151.2093},"type":"location"})");
  EXPECT_EQ(r.messages[0].text, "Location: -33.8688, 151.2093");
  auto meta = parse(r.messages[0].metadata_json);
  EXPECT_FALSE(meta["location"].HasMember("name"));
}

TEST(WhatsappWebhook, TakesInteractiveButtonAndListReplies) {
  auto r = parse_webhook(
      test_settings(),
      signed_post(envelope(
          R"([{"context":{"from":"15550783881","id":"wamid.Q"},"from":"16505551234","id":"wamid.BTN","timestamp":"1749416500","type":"interactive","interactive":{"type":"button_reply","button_reply":{"id":"late-checkout-yes","title":"Yes, please"}}},
              {"from":"16505551234","id":"wamid.LIST","timestamp":"1749416500","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"spa-1400","title":"Spa at 14:00","description":"60 minutes"}}}])")));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].content_type, "interactive");
  EXPECT_EQ(r.messages[0].text, "Yes, please");
  auto m0 = parse(r.messages[0].metadata_json);
  EXPECT_STREQ(m0["interactive"]["type"].GetString(), "button_reply");
  EXPECT_STREQ(m0["interactive"]["id"].GetString(), "late-checkout-yes");
  EXPECT_STREQ(m0["context_message_id"].GetString(), "wamid.Q");
  EXPECT_EQ(r.messages[1].text, "Spa at 14:00");
  auto m1 = parse(r.messages[1].metadata_json);
  EXPECT_STREQ(m1["interactive"]["id"].GetString(), "spa-1400");
}

TEST(WhatsappWebhook, TakesATemplateQuickReplyButton) {
  const auto r = parse_one(
      R"({"context":{"from":"15550783881","id":"wamid.TPL"},"from":"16505551234","id":"wamid.QR","timestamp":"1749416500","type":"button","button":{"payload":"CHECKIN_CONFIRM","text":"Confirm check-in"}})");
  EXPECT_EQ(r.messages[0].content_type, "button");
  EXPECT_EQ(r.messages[0].text, "Confirm check-in");
  auto meta = parse(r.messages[0].metadata_json);
  EXPECT_STREQ(meta["button"]["payload"].GetString(), "CHECKIN_CONFIRM");
}

TEST(WhatsappWebhook, TakesAReaction) {
  const auto r = parse_one(
      R"({"from":"16505551234","id":"wamid.REACT","timestamp":"1749416500","reaction":{"message_id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA","emoji":"\ud83d\udc4d"},"type":"reaction"})");
  EXPECT_EQ(r.messages[0].content_type, "reaction");
  EXPECT_EQ(r.messages[0].text, "\xF0\x9F\x91\x8D");  // U+1F44D as UTF-8
  auto meta = parse(r.messages[0].metadata_json);
  EXPECT_STREQ(meta["message_id"].GetString(),
               "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBJDQjZCMzlEQUE4OTJBMTE4RTUA");
}

TEST(WhatsappWebhook, MarksUnknownTypesUnsupported) {
  auto r = parse_webhook(
      test_settings(),
      signed_post(envelope(
          R"([{"from":"16505551234","id":"wamid.UNS","timestamp":"1749416500","errors":[{"code":131051,"details":"Message type is not currently supported","title":"Unsupported message type"}],"type":"unsupported"},
              {"from":"16505551234","id":"wamid.ORD","timestamp":"1749416500","type":"order","order":{"catalog_id":"1","product_items":[]}}])")));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.messages.size(), 2u);
  for (const auto& m : r.messages) {
    EXPECT_EQ(m.content_type, "unsupported");
    EXPECT_EQ(m.text, "");
    EXPECT_EQ(m.attachments_json, "[]");
  }
  EXPECT_STREQ(parse(r.messages[0].metadata_json)["whatsapp_type"].GetString(), "unsupported");
  EXPECT_STREQ(parse(r.messages[1].metadata_json)["whatsapp_type"].GetString(), "order");
}

TEST(WhatsappWebhook, EscapesWhatItCopiesIntoJson) {
  const auto r = parse_one(
      R"({"from":"16505551234","id":"wamid.ESC","timestamp":"1749416500","type":"image","image":{"caption":"a \"quoted\"\nline","mime_type":"image/png","sha256":"x\\y","id":"1"}})");
  EXPECT_EQ(r.messages[0].text, "a \"quoted\"\nline");
  auto a = parse(r.messages[0].attachments_json);
  EXPECT_STREQ(a[0]["sha256"].GetString(), "x\\y");
}

TEST(WhatsappWebhook, UnknownContactLeavesTheNameEmpty) {
  auto r = parse_webhook(
      test_settings(),
      signed_post(envelope(
          R"([{"from":"4915112345678","id":"wamid.X","timestamp":"1749416500","type":"text","text":{"body":"Hallo"}}])")));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.messages[0].guest_name, "");
  EXPECT_EQ(r.messages[0].from, "+4915112345678");
}

// A guest who adopted a WhatsApp username, phone withheld: Meta's example from
// developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids
// (with a parent BSUID in its documented "ENT." form).
TEST(WhatsappWebhook, TakesAUsernameGuestWithoutPhoneByTheirBsuid) {
  const auto body = envelope(
      R"([{"from_user_id":"US.13491208655302741918","from_parent_user_id":"US.ENT.11815799212886844830","id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}])",
      R"([{"profile":{"name":"Somebody Else"},"wa_id":""},
          {"profile":{"name":"Sheena Nelson","username":"@realsheenanelson"},"user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830"}])");
  const auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_code << ": " << r.error_message;
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& m = r.messages[0];
  EXPECT_EQ(m.from, "US.13491208655302741918");
  EXPECT_EQ(m.to, "+15550783881");
  EXPECT_EQ(m.guest_name, "Sheena Nelson");  // matched by user_id; an empty wa_id matches nobody
  EXPECT_EQ(m.text, "Does it come in another color?");
  EXPECT_EQ(m.sent_at, "2025-06-08T20:59:43Z");
  auto meta = parse(m.metadata_json);
  ASSERT_TRUE(meta.IsObject());
  EXPECT_EQ(meta.MemberCount(), 3u);
  EXPECT_STREQ(meta["whatsapp_user_id"].GetString(), "US.13491208655302741918");
  EXPECT_STREQ(meta["whatsapp_parent_user_id"].GetString(), "US.ENT.11815799212886844830");
  EXPECT_STREQ(meta["whatsapp_username"].GetString(), "@realsheenanelson");
}

TEST(WhatsappWebhook, KeepsThePhoneAndRecordsTheBsuidWhenBothCome) {
  const auto body = envelope(
      R"([{"from":"16505551234","from_user_id":"US.13491208655302741918","id":"wamid.BOTH","timestamp":"1749416383","type":"text","text":{"body":"Late check-out?"}}])",
      R"([{"profile":{"name":"Pablo M."},"wa_id":"16505551234","user_id":"US.13491208655302741918"}])");
  const auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_code << ": " << r.error_message;
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& m = r.messages[0];
  EXPECT_EQ(m.from, "+16505551234");
  EXPECT_EQ(m.guest_name, "Pablo M.");
  EXPECT_EQ(m.metadata_json, R"({"whatsapp_user_id":"US.13491208655302741918"})");
}

TEST(WhatsappWebhook, TakesThePhoneAndLeavesOutABsuidThatIsNotOne) {
  const auto r = parse_one(
      R"({"from":"16505551234","from_user_id":"US.1349 1208","from_parent_user_id":"ENT.118","id":"wamid.P","timestamp":"1749416383","type":"text","text":{"body":"x"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].from, "+16505551234");
  EXPECT_EQ(r.messages[0].guest_name, "Sheena Nelson");
  EXPECT_EQ(r.messages[0].metadata_json, "{}");
}

TEST(WhatsappWebhook, TakesTheLongestBsuidMetaDocuments) {
  const std::string longest = "BR." + std::string(64, '7') + std::string(64, 'z');  // 128
  const auto r =
      parse_one(R"({"from_user_id":")" + longest +
                R"(","id":"wamid.L","timestamp":"1749416383","type":"text","text":{"body":"x"}})");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].from, longest);
}

TEST(WhatsappWebhook, TakesEveryEntryAndEveryChange) {
  const std::string body = R"({"object":"whatsapp_business_account","entry":[
    {"id":"WABA1","changes":[
      {"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"111"},
                "contacts":[{"profile":{"name":"Ana"},"wa_id":"4915112345678"},{"profile":{"name":"Ben"},"wa_id":"447700900123"}],
                "messages":[{"from":"4915112345678","id":"wamid.A1","timestamp":"1749416400","type":"text","text":{"body":"one"}},
                            {"from":"447700900123","id":"wamid.B1","timestamp":"1749416500","type":"text","text":{"body":"two"}}]},
       "field":"messages"},
      {"value":{"phone_number":"4930123456","event":"VERIFIED_ACCOUNT"},"field":"account_update"},
      {"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930123456","phone_number_id":"111"},
                "statuses":[{"id":"wamid.OUT1","status":"delivered","timestamp":"1749416600","recipient_id":"4915112345678"}]},
       "field":"messages"}]},
    {"id":"WABA2","changes":[
      {"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"+49 40 765432","phone_number_id":"222"},
                "contacts":[{"profile":{"name":"Chloe"},"wa_id":"33612345678"}],
                "messages":[{"from":"33612345678","id":"wamid.C1","timestamp":"1749420000","type":"text","text":{"body":"three"}}]},
       "field":"messages"}]}]})";
  auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].external_id, "wamid.A1");
  EXPECT_EQ(r.messages[0].guest_name, "Ana");
  EXPECT_EQ(r.messages[1].external_id, "wamid.B1");
  EXPECT_EQ(r.messages[1].guest_name, "Ben");
  EXPECT_EQ(r.messages[1].from, "+447700900123");
  EXPECT_EQ(r.messages[2].external_id, "wamid.C1");
  EXPECT_EQ(r.messages[2].business, "222");
  EXPECT_EQ(r.messages[2].to, "+4940765432");
  EXPECT_EQ(r.messages[2].guest_name, "Chloe");
  EXPECT_EQ(r.messages[2].sent_at, "2025-06-08T22:00:00Z");
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r.messages[i].business, "111");
    EXPECT_EQ(r.messages[i].to, "+4930123456");
  }
  ASSERT_EQ(r.statuses.size(), 1u);
  EXPECT_EQ(r.statuses[0].provider_message_id, "wamid.OUT1");
}

TEST(WhatsappWebhook, IgnoresChangesOfOtherFields) {
  // Other subscribed fields have their own shapes: none of it is read as messages.
  const std::string body = R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
    {"value":{"event":"APPROVED","message_template_id":594425479261596,"message_template_name":"checkin_reminder","message_template_language":"en_US","reason":"NONE"},"field":"message_template_status_update"},
    {"value":{"messages":"not an array","metadata":{}},"field":"account_review_update"}]}]})";
  const auto r = parse_webhook(test_settings(), signed_post(body));
  EXPECT_EQ(r.status, 200) << r.error_message;
  EXPECT_TRUE(r.messages.empty());
  EXPECT_TRUE(r.statuses.empty());
}

// ---- POST: statuses --------------------------------------------------------------------------

TEST(WhatsappWebhook, TakesDeliveredReadAndFailedStatuses) {
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[
    {"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA","status":"delivered","timestamp":"1749416400","recipient_id":"16505551234","conversation":{"id":"6ceb9d929c1a1a2b4c8a6cd2d0c3c3f4","origin":{"type":"service"}},"pricing":{"billable":false,"pricing_model":"PMP","category":"service"}},
    {"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA","status":"read","timestamp":"1749416500","recipient_id":"16505551234"},
    {"id":"wamid.FAILED","status":"failed","timestamp":"1749416600","recipient_id":"16505551234","errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message","error_data":{"details":"Message failed to send because more than 24 hours have passed since the customer last replied to this number."},"href":"https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"}]},
    {"id":"wamid.DEL","status":"deleted","timestamp":"1749416600","recipient_id":"16505551234"}
  ]},"field":"messages"}]}]})";
  auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_message;
  EXPECT_TRUE(r.messages.empty());
  ASSERT_EQ(r.statuses.size(), 3u);  // "deleted" is not a delivery status Bellhop tracks
  EXPECT_EQ(r.statuses[0].provider_message_id,
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA");
  EXPECT_EQ(r.statuses[0].status, "delivered");
  EXPECT_EQ(r.statuses[0].recipient, "+16505551234");
  EXPECT_EQ(r.statuses[0].timestamp, "2025-06-08T21:00:00Z");
  EXPECT_EQ(r.statuses[0].error_code, "");
  EXPECT_EQ(r.statuses[1].status, "read");
  EXPECT_EQ(r.statuses[1].timestamp, "2025-06-08T21:01:40Z");
  const auto& f = r.statuses[2];
  EXPECT_EQ(f.status, "failed");
  EXPECT_EQ(f.provider_message_id, "wamid.FAILED");
  EXPECT_EQ(f.error_code, "131047");
  EXPECT_EQ(f.error_reason, "outside_service_window");  // the window closed, as Meta says
  EXPECT_EQ(f.timestamp, "2025-06-08T21:03:20Z");
}

TEST(WhatsappWebhook, FailedStatusWithoutDetailsUsesTheMessage) {
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[
    {"id":"wamid.F2","status":"failed","timestamp":"1749416600","recipient_id":"16505551234","errors":[{"code":131026,"message":"Message undeliverable"}]}]},"field":"messages"}]}]})";
  auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.statuses.size(), 1u);
  EXPECT_EQ(r.statuses[0].error_code, "131026");
  EXPECT_EQ(r.statuses[0].error_reason, "Message undeliverable");
}

TEST(WhatsappWebhook, TakesStatusesOfASendToABsuidWithoutRecipientId) {
  // Meta's "delivered" example for a send to a BSUID whose phone it withholds, then a failed
  // status (no contacts[]), then one that names both.
  const std::string body =
      R"({"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},
    "contacts":[{"profile":{"name":"Pablo M.","username":"@pablomorales"},"user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830"}],
    "statuses":[
    {"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=","status":"delivered","timestamp":"1750030073","recipient_user_id":"US.13491208655302741918","parent_user_id":"US.ENT.11815799212886844830","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},
    {"id":"wamid.F3","status":"failed","timestamp":"1750030074","recipient_user_id":"US.13491208655302741918","errors":[{"code":131026,"message":"Message undeliverable"}]},
    {"id":"wamid.R4","status":"read","timestamp":"1750030075","recipient_id":"16505551234","recipient_user_id":"US.13491208655302741918"}]},"field":"messages"}]}]})";
  auto r = parse_webhook(test_settings(), signed_post(body));
  ASSERT_EQ(r.status, 200) << r.error_code << ": " << r.error_message;
  ASSERT_EQ(r.statuses.size(), 3u);
  EXPECT_EQ(r.statuses[0].provider_message_id,
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=");
  EXPECT_EQ(r.statuses[0].status, "delivered");
  EXPECT_EQ(r.statuses[0].recipient, "US.13491208655302741918");
  EXPECT_EQ(r.statuses[0].timestamp, "2025-06-15T23:27:53Z");
  EXPECT_EQ(r.statuses[1].status, "failed");
  EXPECT_EQ(r.statuses[1].recipient, "US.13491208655302741918");
  EXPECT_EQ(r.statuses[1].error_code, "131026");
  EXPECT_EQ(r.statuses[2].recipient, "+16505551234");  // the phone when Meta gives it
}

// ---- POST: signature -------------------------------------------------------------------------

const std::string simple_body = envelope(
    R"([{"from":"16505551234","id":"wamid.S","timestamp":"1749416383","type":"text","text":{"body":"hi"}}])");

TEST(WhatsappSignature, PythonSignatureIsAccepted) {
  EXPECT_TRUE(signature_valid(app_secret, simple_body, python_signature(app_secret, simple_body)));
  EXPECT_EQ(parse_webhook(test_settings(), signed_post(simple_body)).status, 200);
}

TEST(WhatsappSignature, UppercaseHexIsAccepted) {
  auto sig = python_signature(app_secret, simple_body);
  for (std::size_t i = 7; i < sig.size(); ++i) sig[i] = static_cast<char>(std::toupper(sig[i]));
  EXPECT_TRUE(signature_valid(app_secret, simple_body, sig));
}

TEST(WhatsappSignature, OneByteChangeOfTheBodyIsRefused) {
  const auto sig = python_signature(app_secret, simple_body);
  auto tampered = simple_body;
  tampered[tampered.find("\"hi\"") + 1] = 'H';
  const auto r = parse_webhook(test_settings(), post(tampered, sig));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
  EXPECT_TRUE(r.messages.empty());
}

TEST(WhatsappSignature, OneByteChangeOfTheSignatureIsRefused) {
  auto sig = python_signature(app_secret, simple_body);
  sig.back() = sig.back() == '0' ? '1' : '0';
  EXPECT_EQ(parse_webhook(test_settings(), post(simple_body, sig)).status, 401);
  auto truncated = python_signature(app_secret, simple_body);
  truncated.pop_back();
  EXPECT_EQ(parse_webhook(test_settings(), post(simple_body, truncated)).status, 401);
}

TEST(WhatsappSignature, MissingHeaderIsRefused) {
  const auto r = parse_webhook(test_settings(), post(simple_body, ""));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
}

TEST(WhatsappSignature, WrongSecretOrPrefixIsRefused) {
  EXPECT_EQ(
      parse_webhook(test_settings(), post(simple_body, python_signature("other", simple_body)))
          .status,
      401);
  auto sig = python_signature(app_secret, simple_body);
  EXPECT_FALSE(signature_valid(app_secret, simple_body, "sha1=" + sig.substr(7)));
  EXPECT_FALSE(signature_valid(app_secret, simple_body, sig.substr(7)));
}

TEST(WhatsappSignature, EmptyAppSecretRefusesEvenAMatchingSignature) {
  auto s = test_settings();
  s.app_secret.clear();
  const auto sig = python_signature("", simple_body);  // a valid HMAC with an empty key
  EXPECT_FALSE(signature_valid("", simple_body, sig));
  const auto r = parse_webhook(s, post(simple_body, sig));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
}

// ---- POST: content type, JSON, payload -------------------------------------------------------

TEST(WhatsappWebhook, WrongContentTypeIs415) {
  for (const char* ct : {"text/plain", "application/x-www-form-urlencoded", "",
                         "application/json; charset=iso-8859-1", "application/jsonp"}) {
    const auto r = parse_webhook(test_settings(), signed_post(simple_body, ct));
    EXPECT_EQ(r.status, 415) << ct;
    EXPECT_EQ(r.error_code, "unsupported_media_type") << ct;
  }
  auto w = signed_post(simple_body);
  w.headers.erase("content-type");
  EXPECT_EQ(parse_webhook(test_settings(), w).status, 415);
}

TEST(WhatsappWebhook, TheSignatureIsCheckedBeforeAnythingElse) {
  // An unsigned post learns nothing about what Bellhop would accept.
  for (const std::string& body : {std::string("not json"), simple_body}) {
    EXPECT_EQ(parse_webhook(test_settings(), post(body, "", "text/plain")).status, 401);
    EXPECT_EQ(parse_webhook(test_settings(), post(body, "sha256=" + std::string(64, '0'))).status,
              401);
  }
}

TEST(WhatsappWebhook, JsonContentTypeWithCharsetIsAccepted) {
  for (const char* ct : {"application/json; charset=utf-8", "Application/JSON;charset=\"UTF-8\"",
                         "application/json"}) {
    EXPECT_EQ(parse_webhook(test_settings(), signed_post(simple_body, ct)).status, 200) << ct;
  }
}

TEST(WhatsappWebhook, MalformedJsonIs400) {
  for (const std::string& body : {std::string(R"({"object":"whatsapp_business_account",)"),
                                  std::string("not json"), std::string(""), simple_body + "garbage",
                                  std::string("{\"object\":\"\xC3\x28\"}")}) {  // invalid UTF-8
    const auto r = parse_webhook(test_settings(), signed_post(body));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.error_code, "malformed_json") << body;
  }
}

TEST(WhatsappWebhook, DeepNestingIs400BeforeParsing) {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto r = parse_webhook(test_settings(), signed_post(deep));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_code, "malformed_json");
  EXPECT_THAT(r.error_message, HasSubstr("32"));

  // 32 levels pass the guard (and then fail as a payload); 33 do not.
  auto nested = [](int levels) {
    std::string s = R"({"object":"whatsapp_business_account","x":)";
    for (int i = 1; i < levels; ++i) s += "[";
    for (int i = 1; i < levels; ++i) s += "]";
    return s + "}";
  };
  EXPECT_EQ(parse_webhook(test_settings(), signed_post(nested(32))).status, 422);
  EXPECT_EQ(parse_webhook(test_settings(), signed_post(nested(33))).status, 400);
  // Brackets inside strings do not count.
  const auto in_string = R"({"object":"whatsapp_business_account","entry":[],"s":")" +
                         std::string(100, '[') + R"(\"{"})";
  EXPECT_EQ(parse_webhook(test_settings(), signed_post(in_string)).status, 200);
}

TEST(WhatsappWebhook, WrongObjectOrMissingEntryIs422) {
  for (const std::string& body :
       {std::string(R"({"object":"page","entry":[]})"), std::string(R"({"entry":[]})"),
        std::string(R"({"object":"whatsapp_business_account"})"),
        std::string(R"({"object":"whatsapp_business_account","entry":{}})"),
        std::string(R"(["whatsapp_business_account"])"),
        std::string(R"({"object":"whatsapp_business_account","entry":[{"id":"1"}]})")}) {
    const auto r = parse_webhook(test_settings(), signed_post(body));
    EXPECT_EQ(r.status, 422) << body;
    EXPECT_EQ(r.error_code, "invalid_payload") << body;
  }
}

TEST(WhatsappWebhook, AMessageWithoutIdOrFromRefusesTheWholePost) {
  const char* good =
      R"({"from":"16505551234","id":"wamid.OK","timestamp":"1749416383","type":"text","text":{"body":"fine"}})";
  for (const std::string& bad :
       {std::string(
            R"({"from":"16505551234","timestamp":"1749416383","type":"text","text":{"body":"x"}})"),
        std::string(
            R"({"id":"wamid.NOFROM","timestamp":"1749416383","type":"text","text":{"body":"x"}})"),
        std::string(R"({"from":"","id":"wamid.E","type":"text","text":{"body":"x"}})"),
        std::string(R"({"from":16505551234,"id":"wamid.N","type":"text","text":{"body":"x"}})"),
        std::string(R"({"from":"not-a-number","id":"wamid.N","type":"text","text":{"body":"x"}})"),
        std::string(R"("just a string")")}) {
    const auto r = parse_webhook(test_settings(),
                                 signed_post(envelope(std::string("[") + good + "," + bad + "]")));
    EXPECT_EQ(r.status, 422) << bad;
    EXPECT_EQ(r.error_code, "invalid_payload") << bad;
    EXPECT_TRUE(r.messages.empty()) << bad;
  }
}

TEST(WhatsappWebhook, AMessageWithoutPhoneAndWithoutAValidBsuidRefusesTheWholePost) {
  const char* good =
      R"({"from_user_id":"DE.ENT.4711","id":"wamid.OK","timestamp":"1749416383","type":"text","text":{"body":"fine"}})";
  for (const std::string& user_id :
       {std::string(R"("13491208655302741918")"), std::string(R"("us.13491208655302741918")"),
        std::string(R"("uS.13491208655302741918")"), std::string(R"("Us.13491208655302741918")"),
        std::string(R"("USA.13491208655302741918")"), std::string(R"("U1.13491208655302741918")"),
        std::string(R"("US.")"), std::string(R"("US.ENT.")"), std::string(R"("US..1349")"),
        std::string(R"("US.1349-1208")"), std::string(R"("US.ENT.1181.5799")"),
        std::string(R"(" US.13491208655302741918")"), std::string(R"("US.13491208655302741918\n")"),
        std::string(R"("US.\u00e9134")"), "\"US." + std::string(129, '1') + "\"",
        std::string("13491208655302741918"), std::string("null")}) {
    const std::string bad =
        R"({"from_user_id":)" + user_id +
        R"(,"id":"wamid.BAD","timestamp":"1749416383","type":"text","text":{"body":"x"}})";
    const auto r = parse_webhook(test_settings(),
                                 signed_post(envelope(std::string("[") + good + "," + bad + "]")));
    EXPECT_EQ(r.status, 422) << user_id;
    EXPECT_EQ(r.error_code, "invalid_payload") << user_id;
    EXPECT_THAT(r.error_message, HasSubstr("messages[1].from")) << user_id;
    EXPECT_TRUE(r.messages.empty()) << user_id;
  }
  // A parent BSUID alone is not who the guest is.
  const auto r = parse_webhook(
      test_settings(),
      signed_post(envelope(
          R"([{"from_parent_user_id":"US.ENT.11815799212886844830","id":"wamid.PARENT","type":"text","text":{"body":"x"}}])")));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.error_message, HasSubstr("from and .from_user_id are missing"));
}

TEST(WhatsappWebhook, AStatusWithoutIdOrMissingMetadataIs422) {
  const std::string no_id =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[{"status":"read","timestamp":"1749416500","recipient_id":"16505551234"}]},"field":"messages"}]}]})";
  EXPECT_EQ(parse_webhook(test_settings(), signed_post(no_id)).status, 422);
  const std::string no_number_id =
      R"({"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881"},"messages":[{"from":"16505551234","id":"wamid.A","type":"text","text":{"body":"x"}}]},"field":"messages"}]}]})";
  const auto r = parse_webhook(test_settings(), signed_post(no_number_id));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.error_message, HasSubstr("phone_number_id"));
}

TEST(WhatsappWebhook, BadTimestampLeavesSentAtEmpty) {
  const auto r = parse_one(
      R"({"from":"16505551234","id":"wamid.T","timestamp":"yesterday","type":"text","text":{"body":"x"}})");
  EXPECT_EQ(r.messages[0].sent_at, "");
}

// ---- GET: subscription verification ----------------------------------------------------------

webhook get(const std::string& target) {
  webhook w;
  w.method = "GET";
  w.target = target;
  return w;
}

TEST(WhatsappVerify, AnswersTheChallenge) {
  const auto r =
      verify_subscription(test_settings(), get("/v1/webhooks/"
                                               "whatsapp?hub.mode=subscribe&hub.challenge="
                                               "1158201444&hub.verify_token=hotel-berlin-verify"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.reply_body, "1158201444");
  EXPECT_EQ(r.reply_content_type, "text/plain");
}

TEST(WhatsappVerify, DecodesPercentEncoding) {
  auto s = test_settings();
  s.verify_token = "s3cr\xC3\xA9t&=+";
  const auto r = verify_subscription(
      s, get("/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=s3cr%C3%A9t%26%3D%2B"
             "&hub.challenge=abc%20def%2F1"));
  EXPECT_EQ(r.status, 200) << r.error_message;
  EXPECT_EQ(r.reply_body, "abc def/1");
}

TEST(WhatsappVerify, RefusesAnOverlongChallenge) {
  const std::string base =
      "/v1/webhooks/"
      "whatsapp?hub.mode=subscribe&hub.verify_token=hotel-berlin-verify&hub.challenge=";
  EXPECT_EQ(verify_subscription(test_settings(), get(base + std::string(1024, '7'))).status, 200);
  EXPECT_EQ(verify_subscription(test_settings(), get(base + std::string(1025, '7'))).status, 400);
}

TEST(WhatsappVerify, WrongTokenIs403) {
  for (const char* token :
       {"hotel-berlin-verifx", "hotel-berlin-verif", "", "HOTEL-BERLIN-VERIFY"}) {
    const auto r = verify_subscription(
        test_settings(),
        get(std::string(
                "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42&hub.verify_token=") +
            token));
    EXPECT_EQ(r.status, 403) << token;
    EXPECT_EQ(r.error_code, "forbidden") << token;
    EXPECT_EQ(r.reply_body, "") << token;
  }
}

TEST(WhatsappVerify, EmptyConfiguredTokenRefusesEverything) {
  auto s = test_settings();
  s.verify_token.clear();
  for (const char* target :
       {"/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42&hub.verify_token=",
        "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42&hub.verify_token=x"}) {
    const auto r = verify_subscription(s, get(target));
    EXPECT_EQ(r.status, 403) << target;
    EXPECT_EQ(r.reply_body, "") << target;
  }
}

TEST(WhatsappVerify, MissingOrOtherModeOrParamsIs400) {
  for (const char* target :
       {"/v1/webhooks/whatsapp",
        "/v1/webhooks/whatsapp?hub.challenge=42&hub.verify_token=hotel-berlin-verify",
        "/v1/webhooks/"
        "whatsapp?hub.mode=unsubscribe&hub.challenge=42&hub.verify_token=hotel-berlin-verify",
        "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=hotel-berlin-verify",
        "/v1/webhooks/"
        "whatsapp?hub.mode=subscribe&hub.challenge=&hub.verify_token=hotel-berlin-verify",
        "/v1/webhooks/whatsapp?hub.mode=subscribe&hub.challenge=42"}) {
    const auto r = verify_subscription(test_settings(), get(target));
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(r.reply_body, "") << target;
  }
}

// ---- send_request ----------------------------------------------------------------------------

outbound_message message_to(const std::string& to, const std::string& text,
                            const std::string& attachments = "[]") {
  outbound_message m;
  m.id = "01JDAB4Z";
  m.property_id = "hotel-berlin";
  m.channel = "whatsapp";
  m.to = to;
  m.text = text;
  m.attachments_json = attachments;
  return m;
}

TEST(WhatsappSend, BuildsATextMessage) {
  const auto call = send_request(
      test_settings(), message_to("+49 151 1234-5678", "Breakfast is 7:00\u201310:30.\n\"Enjoy\""));
  EXPECT_EQ(call.method, "POST");
  EXPECT_EQ(call.url, "https://graph.facebook.com/v21.0/106540352242922/messages");
  using header = std::pair<std::string, std::string>;
  EXPECT_THAT(call.headers, ::testing::UnorderedElementsAre(
                                header{"Authorization", "Bearer EAAGm0PX4ZCpsBA-token"},
                                header{"Content-Type", "application/json"}));
  auto d = parse(call.body);
  ASSERT_TRUE(d.IsObject());
  EXPECT_EQ(d.MemberCount(), 5u);
  EXPECT_STREQ(d["messaging_product"].GetString(), "whatsapp");
  EXPECT_STREQ(d["recipient_type"].GetString(), "individual");
  EXPECT_STREQ(d["to"].GetString(), "4915112345678");
  EXPECT_STREQ(d["type"].GetString(), "text");
  ASSERT_TRUE(d["text"].IsObject());
  EXPECT_TRUE(d["text"]["preview_url"].IsFalse());
  EXPECT_STREQ(d["text"]["body"].GetString(), "Breakfast is 7:00\u201310:30.\n\"Enjoy\"");
}

message_template check_in_template() {
  message_template t;
  t.name = "check_in_reminder";
  t.language = "en_US";
  t.components.push_back({"body", "", -1, {{"text", "Ana", ""}, {"text", "15:00", "time"}}});
  t.components.push_back({"button", "quick_reply", 0, {{"payload", "late-check-in", ""}}});
  return t;
}

TEST(WhatsappSend, BuildsATemplateMessageWhenThereIsNoTextOrAttachment) {
  auto m = message_to("+49 151 1234-5678", "");
  m.template_msg = check_in_template();
  const auto call = send_request(test_settings(), m);
  EXPECT_EQ(call.url, "https://graph.facebook.com/v21.0/106540352242922/messages");
  EXPECT_EQ(
      call.body,
      R"({"messaging_product":"whatsapp","recipient_type":"individual",)"
      R"("to":"4915112345678","type":"template","template":{"name":"check_in_reminder",)"
      R"("language":{"code":"en_US"},"components":[{"type":"body","parameters":[)"
      R"({"type":"text","text":"Ana"},{"type":"text","text":"15:00","parameter_name":"time"}]},)"
      R"({"type":"button","sub_type":"quick_reply","index":"0","parameters":[)"
      R"({"type":"payload","payload":"late-check-in"}]}]}})");
}

TEST(WhatsappSend, ATemplateWithoutComponentsHasNone) {
  auto m = message_to("US.13491208655302741918", "");
  m.template_msg = message_template{"hello_world", "en", {}};
  EXPECT_EQ(send_request(test_settings(), m).body,
            R"({"messaging_product":"whatsapp","recipient_type":"individual",)"
            R"("recipient":"US.13491208655302741918","type":"template",)"
            R"("template":{"name":"hello_world","language":{"code":"en"}}})");
}

TEST(WhatsappSend, TextWithATemplateGoesAsTheText) {
  auto m = message_to("+4915112345678", "Your room is ready");
  m.template_msg = check_in_template();
  auto d = parse(send_request(test_settings(), m).body);
  EXPECT_STREQ(d["type"].GetString(), "text");
  EXPECT_FALSE(d.HasMember("template"));
}

// ---- admit: the customer-service window -----------------------------------------------------

constexpr std::int64_t day_ms = 86'400'000;
constexpr std::int64_t now = 1'800'000'000'000;

TEST(WhatsappWindow, AFreeFormMessageInsideTheWindowGoesAsItIs) {
  auto m = message_to("+4915112345678", "Breakfast is from 7.");
  m.last_inbound_at = now - day_ms + 1;
  EXPECT_FALSE(admit(m, now, day_ms).has_value());
  EXPECT_EQ(m.text, "Breakfast is from 7.");
  m.template_msg = check_in_template();  // the fallback is not used inside
  EXPECT_FALSE(admit(m, now, day_ms).has_value());
  EXPECT_EQ(m.text, "Breakfast is from 7.");
  EXPECT_FALSE(sends_template(m));
}

TEST(WhatsappWindow, OutsideTheWindowWithoutATemplateIsRefusedWithoutACall) {
  auto m = message_to("+4915112345678", "Breakfast is from 7.");
  m.last_inbound_at = now - day_ms;  // exactly 24 h: closed
  auto r = admit(m, now, day_ms);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->outcome, send_outcome::permanent);
  EXPECT_EQ(r->reason, "outside_service_window");
  EXPECT_EQ(r->error_code, "outside_service_window");
  // No known conversation: outside.
  auto unknown = message_to("+4915112345678", "hello");
  ASSERT_TRUE(admit(unknown, now, day_ms).has_value());
  // Attachments are free-form too.
  auto image = message_to("+4915112345678", "",
                          R"([{"type":"image","url":"https://cdn.hotel.example/key.png"}])");
  ASSERT_TRUE(admit(image, now, day_ms).has_value());
}

TEST(WhatsappWindow, OutsideTheWindowTheTemplateGoesInstead) {
  auto m = message_to("+4915112345678", "Your room is ready",
                      R"([{"type":"image","url":"https://cdn.hotel.example/key.png"}])");
  m.template_msg = check_in_template();
  m.last_inbound_at = now - 2 * day_ms;
  EXPECT_FALSE(admit(m, now, day_ms).has_value());
  EXPECT_TRUE(sends_template(m));
  EXPECT_STREQ(parse(send_request(test_settings(), m).body)["type"].GetString(), "template");
}

TEST(WhatsappWindow, ATemplateOnlyMessageGoesWhateverTheWindow) {
  auto m = message_to("+4915112345678", "");
  m.template_msg = check_in_template();
  EXPECT_FALSE(admit(m, now, day_ms).has_value());
  EXPECT_TRUE(sends_template(m));
}

TEST(WhatsappSend, StripsOneTrailingSlashOfTheBaseUrl) {
  auto s = test_settings();
  s.api_base_url = "http://127.0.0.1:8089/v21.0/";
  EXPECT_EQ(send_request(s, message_to("+1", "x")).url,
            "http://127.0.0.1:8089/v21.0/106540352242922/messages");
}

TEST(WhatsappSend, SendsAnImageLinkWithTheTextAsCaption) {
  const auto call = send_request(
      test_settings(),
      message_to(
          "+4915112345678", "Your room key card",
          R"([{"type":"image","url":"https://cdn.hotel.example/key.png","mime_type":"image/png"}])"));
  auto d = parse(call.body);
  EXPECT_STREQ(d["type"].GetString(), "image");
  EXPECT_FALSE(d.HasMember("text"));
  EXPECT_STREQ(d["image"]["link"].GetString(), "https://cdn.hotel.example/key.png");
  EXPECT_STREQ(d["image"]["caption"].GetString(), "Your room key card");
  EXPECT_FALSE(d["image"].HasMember("id"));
  EXPECT_STREQ(d["to"].GetString(), "4915112345678");
}

TEST(WhatsappSend, SendsADocumentByMediaIdWithFilename) {
  const auto call = send_request(
      test_settings(),
      message_to(
          "+4915112345678", "Your invoice",
          R"([{"type":"location"},{"type":"document","id":"1013859600285441","url":"https://x.example/a.pdf","filename":"invoice-412.pdf"}])"));
  auto d = parse(call.body);
  EXPECT_STREQ(d["type"].GetString(), "document");
  EXPECT_STREQ(d["document"]["id"].GetString(), "1013859600285441");
  EXPECT_FALSE(d["document"].HasMember("link"));  // the uploaded media id wins
  EXPECT_STREQ(d["document"]["caption"].GetString(), "Your invoice");
  EXPECT_STREQ(d["document"]["filename"].GetString(), "invoice-412.pdf");
}

TEST(WhatsappSend, AudioWithTextGoesAsADocumentSoTheTextIsNotLost) {
  // WhatsApp's audio messages carry no caption: with a text, the audio goes as a document.
  auto d = parse(send_request(test_settings(),
                              message_to("+4915112345678", "listen",
                                         R"([{"type":"audio","id":"55","filename":"tour.ogg"}])"))
                     .body);
  EXPECT_STREQ(d["type"].GetString(), "document");
  EXPECT_STREQ(d["document"]["id"].GetString(), "55");
  EXPECT_STREQ(d["document"]["caption"].GetString(), "listen");
  EXPECT_STREQ(d["document"]["filename"].GetString(), "tour.ogg");
  EXPECT_FALSE(d.HasMember("audio"));
  // Without a text it stays an audio message (played inline).
  d = parse(send_request(test_settings(),
                         message_to("+4915112345678", "", R"([{"type":"audio","id":"55"}])"))
                .body);
  EXPECT_STREQ(d["type"].GetString(), "audio");
  EXPECT_STREQ(d["audio"]["id"].GetString(), "55");
  EXPECT_FALSE(d["audio"].HasMember("caption"));
}

TEST(WhatsappSend, AttachmentsBeyondTheFirstMediumGoAsLinksUnderTheText) {
  auto d = parse(send_request(
                     test_settings(),
                     message_to("+4915112345678", "Here you go",
                                R"([{"type":"image","url":"https://files.example/1.jpg"},
                                    {"type":"image","url":"https://files.example/2.jpg",
                                     "filename":"garden.jpg"},
                                    {"type":"sticker","url":"https://files.example/s.webp"}])"))
                     .body);
  EXPECT_STREQ(d["type"].GetString(), "image");
  EXPECT_STREQ(d["image"]["link"].GetString(), "https://files.example/1.jpg");
  EXPECT_STREQ(d["image"]["caption"].GetString(),
               "Here you go\ngarden.jpg: https://files.example/2.jpg\n"
               "https://files.example/s.webp");
  // No medium WhatsApp can send: the links are the text.
  d = parse(send_request(test_settings(),
                         message_to("+4915112345678", "",
                                    R"([{"type":"sticker","url":"https://files.example/s.webp"}])"))
                .body);
  EXPECT_STREQ(d["type"].GetString(), "text");
  EXPECT_STREQ(d["text"]["body"].GetString(), "https://files.example/s.webp");
}

TEST(WhatsappSend, FallsBackToTextWithoutAUsableAttachment) {
  for (const char* attachments :
       {"[]", R"([{"type":"sticker","id":"1"}])", R"([{"type":"image"}])", "not json",
        R"({"type":"image","id":"1"})", R"([{"type":"image","id":""}])"}) {
    auto d = parse(send_request(test_settings(), message_to("+1555", "hello", attachments)).body);
    EXPECT_STREQ(d["type"].GetString(), "text") << attachments;
    EXPECT_STREQ(d["text"]["body"].GetString(), "hello") << attachments;
  }
}

TEST(WhatsappSend, SendsToABsuidInRecipientInsteadOfTo) {
  const auto call =
      send_request(test_settings(), message_to("US.13491208655302741918", "Your room is ready"));
  EXPECT_EQ(call.url, "https://graph.facebook.com/v21.0/106540352242922/messages");
  EXPECT_EQ(
      call.body,
      R"({"messaging_product":"whatsapp","recipient_type":"individual","recipient":"US.13491208655302741918","type":"text","text":{"preview_url":false,"body":"Your room is ready"}})");
  auto parent =
      parse(send_request(test_settings(), message_to("US.ENT.11815799212886844830", "x")).body);
  EXPECT_STREQ(parent["recipient"].GetString(), "US.ENT.11815799212886844830");
  EXPECT_FALSE(parent.HasMember("to"));
}

TEST(WhatsappSend, SendsToAPhoneInToAsBefore) {
  EXPECT_EQ(
      send_request(test_settings(), message_to("+49 (151) 1234-5678", "Your room is ready")).body,
      R"({"messaging_product":"whatsapp","recipient_type":"individual","to":"4915112345678","type":"text","text":{"preview_url":false,"body":"Your room is ready"}})");
}

TEST(WhatsappSend, SendsAnythingElseAsItCameForMetaToRefuse) {
  // Neither a phone nor a BSUID: never reduced to its digits, which could be somebody's number.
  for (const char* to : {"us.13491208655302741918", "US.1349-1208", "Room 412", "+", "",
                         "whatsapp:+4915112345678"}) {
    auto d = parse(send_request(test_settings(), message_to(to, "x")).body);
    ASSERT_TRUE(d.HasMember("to")) << to;
    EXPECT_STREQ(d["to"].GetString(), to);
    EXPECT_FALSE(d.HasMember("recipient")) << to;
    EXPECT_NE(recipient_error(to), "") << to << ": the sender refuses it before any call";
  }
}

TEST(WhatsappSend, APhoneOrABsuidIsARecipient) {
  for (const char* to : {"+4915112345678", "4915112345678", "+49 151 1234-5678",
                         "US.13491208655302741918", "US.ENT.11815799212886844830"}) {
    EXPECT_EQ(recipient_error(to), "") << to;
  }
}

// ---- interpret_send --------------------------------------------------------------------------

const std::map<std::string, std::string> no_headers;

std::string graph_error(int code, const std::string& message, const std::string& details = "") {
  std::string body = R"({"error":{"message":")" + message + R"(","type":"OAuthException","code":)" +
                     std::to_string(code);
  if (!details.empty()) {
    body += R"(,"error_data":{"messaging_product":"whatsapp","details":")" + details + R"("})";
  }
  return body + R"(,"fbtrace_id":"AbCdEf123"}})";
}

TEST(WhatsappInterpret, AcceptedWithIdIsSent) {
  const auto r = interpret_send(
      200,
      R"({"messaging_product":"whatsapp","contacts":[{"input":"16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"}]})",
      no_headers);
  EXPECT_EQ(r.outcome, send_outcome::sent);
  EXPECT_EQ(r.provider_message_id, "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA");
  EXPECT_EQ(r.retry_after, 0ms);
}

TEST(WhatsappInterpret, AcceptedWithoutIdIsTransient) {
  for (const char* body :
       {R"({"messaging_product":"whatsapp","messages":[]})", R"({"messages":[{"id":""}]})", "",
        "<html>ok</html>", R"({"messages":[{"id":7}]})"}) {
    const auto r = interpret_send(200, body, no_headers);
    EXPECT_EQ(r.outcome, send_outcome::transient) << body;
    EXPECT_EQ(r.provider_message_id, "") << body;
  }
}

TEST(WhatsappInterpret, ThroughputLimitIsRateLimitedForOneSecond) {
  const auto body = graph_error(130429, "(#130429) Rate limit hit",
                                "Cloud API message throughput has been reached.");
  for (int status : {400, 429}) {
    const auto r = interpret_send(status, body, no_headers);
    EXPECT_EQ(r.outcome, send_outcome::rate_limited) << status;
    EXPECT_EQ(r.retry_after, 1s) << status;
    EXPECT_EQ(r.error_code, "130429") << status;
  }
  const auto r = interpret_send(400, body, {{"retry-after", "7"}});
  EXPECT_EQ(r.retry_after, 7s);
}

TEST(WhatsappInterpret, ApiCallLimitsAreRateLimited) {
  for (int code : {4, 80007}) {
    const auto r = interpret_send(
        400, graph_error(code, "(#" + std::to_string(code) + ") Rate limit issues"), no_headers);
    EXPECT_EQ(r.outcome, send_outcome::rate_limited) << code;
    EXPECT_EQ(r.retry_after, 60s) << code;
    EXPECT_EQ(r.error_code, std::to_string(code));
  }
}

TEST(WhatsappInterpret, PairRateLimitIsRecipientLimitedForSixSeconds) {
  const auto r = interpret_send(
      400,
      graph_error(131056, "(#131056) (Business Account, Consumer Account) pair rate limit hit",
                  "Message failed to send because there were too many messages sent from this "
                  "phone number to the same phone number in a short period of time."),
      no_headers);
  EXPECT_EQ(r.outcome, send_outcome::recipient_limited);
  EXPECT_EQ(r.retry_after, 6s);
  EXPECT_EQ(r.error_code, "131056");
  // Some relays send the code as a string.
  const auto s = interpret_send(
      429, R"({"error":{"message":"pair rate limit hit","code":"131056"}})", no_headers);
  EXPECT_EQ(s.outcome, send_outcome::recipient_limited);
}

TEST(WhatsappInterpret, ClosedWindowIsPermanentOutsideTheServiceWindow) {
  const auto r = interpret_send(
      400,
      graph_error(131047, "(#131047) Re-engagement message",
                  "Message failed to send because more than 24 hours have passed since the "
                  "customer last replied to this number."),
      no_headers);
  EXPECT_EQ(r.outcome, send_outcome::permanent);
  EXPECT_EQ(r.error_code, "131047");
  EXPECT_EQ(r.reason, "outside_service_window");
  EXPECT_EQ(r.retry_after, 0ms);
}

TEST(WhatsappInterpret, UndeliverableAndExperimentArePermanent) {
  const auto u =
      interpret_send(400, graph_error(131026, "(#131026) Message Undeliverable"), no_headers);
  EXPECT_EQ(u.outcome, send_outcome::permanent);
  EXPECT_EQ(u.error_code, "131026");
  EXPECT_THAT(u.reason, HasSubstr("cannot receive"));
  EXPECT_THAT(u.reason, HasSubstr("(#131026) Message Undeliverable"));
  const auto e = interpret_send(
      400, graph_error(130472, "(#130472) User's number is part of an experiment"), no_headers);
  EXPECT_EQ(e.outcome, send_outcome::permanent);
  EXPECT_EQ(e.error_code, "130472");
}

TEST(WhatsappInterpret, Http429WithoutAKnownCodeIsRateLimited) {
  const auto plain = interpret_send(429, "Too Many Requests", no_headers);
  EXPECT_EQ(plain.outcome, send_outcome::rate_limited);
  EXPECT_EQ(plain.retry_after, 1s);
  const auto with_header =
      interpret_send(429, graph_error(613, "Calls exceeded"), {{"retry-after", " 30 "}});
  EXPECT_EQ(with_header.outcome, send_outcome::rate_limited);
  EXPECT_EQ(with_header.retry_after, 30s);
  EXPECT_EQ(with_header.error_code, "613");
  const auto date = interpret_send(429, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}});
  EXPECT_EQ(date.retry_after, 1s);
}

TEST(WhatsappInterpret, Other4xxIsPermanentWithTheProvidersWords) {
  const auto r = interpret_send(
      400,
      graph_error(100, "(#100) Invalid parameter", "Parameter 'to' is not a valid phone number"),
      no_headers);
  EXPECT_EQ(r.outcome, send_outcome::permanent);
  EXPECT_EQ(r.error_code, "100");
  EXPECT_EQ(r.reason, "(#100) Invalid parameter: Parameter 'to' is not a valid phone number");
  const auto token =
      interpret_send(401, graph_error(190, "Error validating access token"), no_headers);
  EXPECT_EQ(token.outcome, send_outcome::permanent);
  EXPECT_EQ(token.error_code, "190");
  EXPECT_EQ(token.reason, "Error validating access token");
}

TEST(WhatsappInterpret, ServerErrorsAndUnreadableAnswersAreTransient) {
  struct answer {
    int status;
    std::string body;
  };
  for (const auto& a :
       {answer{500, graph_error(1, "An unknown error occurred")},
        answer{503, "<html>Service Unavailable</html>"}, answer{502, ""},
        answer{404, "<html>Not Found</html>"}, answer{408, graph_error(100, "x")},
        answer{400, graph_error(131000, "(#131000) Something went wrong")},
        answer{503, graph_error(2, "Service temporarily unavailable")}, answer{301, ""}}) {
    const auto r = interpret_send(a.status, a.body, no_headers);
    EXPECT_EQ(r.outcome, send_outcome::transient) << a.status << " " << a.body;
    EXPECT_EQ(r.retry_after, 0ms) << a.status << " " << a.body;
  }
}

TEST(WhatsappInterpret, DeeplyNestedAnswerIsNotParsed) {
  const auto r =
      interpret_send(200, std::string(100000, '[') + std::string(100000, ']'), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
}

}  // namespace
}  // namespace bellhop::channels::whatsapp
