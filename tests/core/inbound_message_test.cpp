#include "bellhop/core/inbound_message.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "bellhop/core/adapter_auth.hpp"

namespace bellhop::gateway {
namespace {

using namespace std::chrono_literals;

const auto fixed_now = std::chrono::system_clock::time_point(1795000000123ms);

std::string valid_body() {
  return R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":"wamid.HBgL",
             "from":"+4915112345678","to":"+4930123456","guest_name":"Ana",
             "text":"What time is breakfast?","content_type":"text","attachments":[],
             "sent_at":"2026-11-22T10:00:00Z","metadata":{"wa":{"x":1}}})";
}

TEST(InboundMessage, BuildsTheEnvelopeInCanonicalOrder) {
  auto m = parse_inbound_message(valid_body(), {}, fixed_now);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->id.size(), 26u);
  EXPECT_EQ(m->received_at, "2026-11-18T11:06:40.123Z");
  EXPECT_EQ(m->conversation_id.substr(0, 2), "c_");
  rapidjson::Document d;
  d.Parse(m->envelope.c_str());
  ASSERT_TRUE(d.IsObject());
  std::vector<std::string> names;
  for (auto it = d.MemberBegin(); it != d.MemberEnd(); ++it) names.push_back(it->name.GetString());
  EXPECT_EQ(names, (std::vector<std::string>{
                       "id", "property_id", "channel", "external_id", "from", "to", "account",
                       "guest_name", "text", "content_type", "attachments", "sent_at", "metadata",
                       "conversation_id", "received_at", "direction", "conversation_mode"}));
  EXPECT_STREQ(d["direction"].GetString(), "inbound");
  // Last, and "ai": ingest.lua writes "human" there for a conversation with staff.
  EXPECT_STREQ(d["conversation_mode"].GetString(), "ai");
  EXPECT_EQ(m->envelope.substr(m->envelope.size() - 26), R"(,"conversation_mode":"ai"})");
  EXPECT_EQ(d["metadata"]["wa"]["x"].GetInt(), 1);
}

TEST(InboundMessage, DefaultsForOptionalFields) {
  auto m = parse_inbound_message(
      R"({"property_id":"p","channel":"sms","external_id":"e","from":"+1","text":"hi"})", {},
      fixed_now);
  ASSERT_TRUE(m);
  rapidjson::Document d;
  d.Parse(m->envelope.c_str());
  EXPECT_TRUE(d["to"].IsNull());
  EXPECT_STREQ(d["content_type"].GetString(), "text");
  EXPECT_TRUE(d["attachments"].IsArray());
  EXPECT_TRUE(d["metadata"].IsObject());
}

TEST(InboundMessage, ConversationIdIsStablePerGuestAndDiffersAcrossGuests) {
  auto a = parse_inbound_message(valid_body(), {}, fixed_now);
  auto b = parse_inbound_message(valid_body(), {}, fixed_now + 5s);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->conversation_id, b->conversation_id);
  EXPECT_NE(a->id, b->id);
  EXPECT_LT(a->id, b->id) << "ids sort by time";
  auto other = parse_inbound_message(
      R"({"property_id":"hotel-berlin","channel":"whatsapp","external_id":"x","from":"+49","text":"t"})",
      {}, fixed_now);
  ASSERT_TRUE(other);
  EXPECT_NE(other->conversation_id, a->conversation_id);
}

TEST(InboundMessage, AttachmentsWithoutText) {
  auto m = parse_inbound_message(
      R"({"property_id":"p","channel":"whatsapp","external_id":"e","from":"+1",
          "attachments":[{"type":"image","url":"https://x/y.jpg"}]})",
      {}, fixed_now);
  EXPECT_TRUE(m) << m.error().message;
}

struct bad_case {
  const char* name;
  std::string body;
  int status;
  const char* code;
  const char* field;
};

class InboundMessageRejects : public ::testing::TestWithParam<bad_case> {};

TEST_P(InboundMessageRejects, WithStatusCodeAndField) {
  const auto& c = GetParam();
  inbound_limits limits;
  limits.max_text_bytes = 100;
  auto m = parse_inbound_message(c.body, limits, fixed_now);
  ASSERT_FALSE(m) << c.name;
  EXPECT_EQ(m.error().status, c.status) << c.name;
  EXPECT_EQ(m.error().code, c.code) << c.name << ": " << m.error().message;
  EXPECT_EQ(m.error().field, c.field) << c.name;
  EXPECT_FALSE(m.error().message.empty());
}

const std::string base_fields = R"("property_id":"p","channel":"whatsapp","external_id":"e")";

INSTANTIATE_TEST_SUITE_P(
    Table, InboundMessageRejects,
    ::testing::Values(
        bad_case{"empty", "", 400, "malformed_json", ""},
        bad_case{"malformed", "{\"property_id\":", 400, "malformed_json", ""},
        bad_case{"trailing garbage", "{} x", 400, "malformed_json", ""},
        bad_case{"invalid utf-8", "{\"text\":\"\xff\xfe\"}", 400, "malformed_json", ""},
        bad_case{"too deep", "{\"metadata\":" + std::string(40, '[') + std::string(40, ']') + "}",
                 400, "malformed_json", ""},
        bad_case{"array body", "[1,2]", 422, "invalid_message", ""},
        bad_case{"missing property", R"({"channel":"sms","external_id":"e","from":"f","text":"t"})",
                 422, "missing_field", "property_id"},
        bad_case{"missing from", "{" + base_fields + R"(,"text":"t"})", 422, "missing_field",
                 "from"},
        bad_case{"no text or attachments", "{" + base_fields + R"(,"from":"f"})", 422,
                 "missing_field", "text"},
        bad_case{"empty attachments only", "{" + base_fields + R"(,"from":"f","attachments":[]})",
                 422, "missing_field", "text"},
        bad_case{"wrong type", "{" + base_fields + R"(,"from":12,"text":"t"})", 422,
                 "invalid_type", "from"},
        bad_case{"attachments not array", "{" + base_fields + R"(,"from":"f","attachments":{}})",
                 422, "invalid_type", "attachments"},
        bad_case{"metadata not object", "{" + base_fields + R"(,"from":"f","text":"t","metadata":[]})",
                 422, "invalid_type", "metadata"},
        bad_case{"unknown channel",
                 R"({"property_id":"p","channel":"fax","external_id":"e","from":"f","text":"t"})",
                 422, "unknown_channel", "channel"},
        bad_case{"bad property charset",
                 R"({"property_id":"p q","channel":"sms","external_id":"e","from":"f","text":"t"})",
                 422, "invalid_field", "property_id"},
        bad_case{"text too long", "{" + base_fields + R"(,"from":"f","text":")" +
                                      std::string(101, 'x') + "\"}",
                 422, "too_long", "text"},
        bad_case{"external id too long",
                 R"({"property_id":"p","channel":"sms","external_id":")" + std::string(300, 'e') +
                     R"(","from":"f","text":"t"})",
                 422, "too_long", "external_id"},
        bad_case{"control chars in from", "{" + base_fields + R"(,"from":"a\nb","text":"t"})", 422,
                 "invalid_field", "from"},
        bad_case{"bad sent_at", "{" + base_fields + R"(,"from":"f","text":"t","sent_at":"yesterday"})",
                 422, "invalid_field", "sent_at"},
        bad_case{"unknown field", "{" + base_fields + R"(,"from":"f","text":"t","txet":"t"})", 422,
                 "unknown_field", "txet"},
        bad_case{"empty external id",
                 R"({"property_id":"p","channel":"sms","external_id":"","from":"f","text":"t"})",
                 422, "invalid_field", "external_id"},
        bad_case{"a million levels", std::string(1000000, '['), 400, "malformed_json", ""},
        bad_case{"a million levels in a string's neighbour",
                 "{\"text\":\"[[[\",\"metadata\":" + std::string(1000000, '{'), 400,
                 "malformed_json", ""}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (auto& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(InboundMessage, ABodyOverTheBodyLimitIs413) {
  inbound_limits limits;
  limits.max_body_bytes = 64;
  const std::string body = "{" + base_fields + R"(,"from":"f","text":")" + std::string(64, 'x') +
                           "\"}";
  auto m = parse_inbound_message(body, limits, fixed_now);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().status, 413);
  EXPECT_EQ(m.error().code, "payload_too_large");
  EXPECT_EQ(m.error().message.find("xxxx"), std::string::npos) << "never echoes the input";
}

// ---- the typed path: an adapter's guest_message, checked by the same rules ----------------

// The POST /v1/messages/inbound body that stands for a guest message (empty optional strings
// left out, as validate_inbound_message takes them).
std::string body_of(const channels::guest_message& g, std::string_view property_id) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  auto put = [&](const char* k, std::string_view v, bool optional = false) {
    if (optional && v.empty()) return;
    w.Key(k);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  put("property_id", property_id);
  put("channel", g.channel);
  put("external_id", g.external_id);
  put("from", g.from);
  put("to", g.to, true);
  put("guest_name", g.guest_name, true);
  put("text", g.text, true);
  put("content_type", g.content_type, true);
  w.Key("attachments");
  w.RawValue(g.attachments_json.data(), g.attachments_json.size(), rapidjson::kArrayType);
  put("sent_at", g.sent_at, true);
  w.Key("metadata");
  w.RawValue(g.metadata_json.data(), g.metadata_json.size(), rapidjson::kObjectType);
  w.EndObject();
  return {b.GetString(), b.GetSize()};
}

channels::guest_message valid_guest() {
  channels::guest_message g;
  g.channel = "whatsapp";
  g.external_id = "wamid.HBgL";
  g.from = "+4915112345678";
  g.to = "+4930123456";
  g.guest_name = "Ana";
  g.text = "What time is breakfast?";
  g.sent_at = "2026-11-22T10:00:00Z";
  g.metadata_json = R"({"wa":{"x":1}})";
  return g;
}

// The envelope without its id (random bits of it differ between two calls).
std::string without_id(std::string envelope) {
  const auto at = envelope.find(R"("id":")");
  if (at != std::string::npos) envelope.erase(at + 6, 26);
  return envelope;
}

TEST(InboundMessageTyped, TheAccountTheGuestWroteToIsInTheEnvelope) {
  auto g = valid_guest();
  g.account = "1234";
  auto typed = validate_inbound_message(g, "hotel-berlin", {}, fixed_now);
  ASSERT_TRUE(typed) << typed.error().message;
  EXPECT_EQ(typed->account, "1234");
  EXPECT_NE(typed->envelope.find(R"("to":"+4930123456","account":"1234","guest_name")"),
            std::string::npos)
      << typed->envelope;
  // An adapter's body may say it too; absent, it is null.
  auto body = body_of(valid_guest(), "hotel-berlin");
  body.insert(1, R"("account":"1234",)");
  auto parsed = parse_inbound_message(body, {}, fixed_now);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(without_id(parsed->envelope), without_id(typed->envelope));
  auto bare = parse_inbound_message(body_of(valid_guest(), "hotel-berlin"), {}, fixed_now);
  ASSERT_TRUE(bare);
  EXPECT_NE(bare->envelope.find(R"("account":null)"), std::string::npos) << bare->envelope;
  body = body_of(valid_guest(), "hotel-berlin");
  body.insert(1, R"("account":7,)");
  auto wrong = parse_inbound_message(body, {}, fixed_now);
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().field, "account");
}

TEST(InboundMessageTyped, WritesTheEnvelopeOfTheSameBody) {
  auto g = valid_guest();
  g.attachments_json = R"([{"type":"image","id":"m1"},{"type":"audio","id":"m2"}])";
  g.attachment_count = 2;
  auto typed = validate_inbound_message(g, "hotel-berlin", {}, fixed_now);
  auto parsed = parse_inbound_message(body_of(g, "hotel-berlin"), {}, fixed_now);
  ASSERT_TRUE(typed) << typed.error().message;
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(without_id(typed->envelope), without_id(parsed->envelope));
  EXPECT_EQ(typed->conversation_id, parsed->conversation_id);
  EXPECT_EQ(typed->guest_name, parsed->guest_name);
  EXPECT_EQ(typed->received_ms, parsed->received_ms);

  // Defaults: nothing optional given is written as the body without those fields is.
  channels::guest_message bare;
  bare.channel = "webchat";
  bare.external_id = "wc_1:c1";
  bare.from = "wc_1";
  bare.text = "hi";
  auto a = validate_inbound_message(bare, "p", {}, fixed_now);
  auto b = parse_inbound_message(
      R"({"property_id":"p","channel":"webchat","external_id":"wc_1:c1","from":"wc_1","text":"hi"})",
      {}, fixed_now);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(without_id(a->envelope), without_id(b->envelope));
}

TEST(InboundMessageTyped, TruncatedTextIsNotedFirstInTheMetadata) {
  auto g = valid_guest();
  g.text_truncated = true;
  auto m = validate_inbound_message(g, "hotel-berlin", {}, fixed_now);
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_NE(m->envelope.find(R"("metadata":{"text_truncated":true,"wa":{"x":1}})"),
            std::string::npos)
      << m->envelope;
  g.metadata_json = "{}";
  m = validate_inbound_message(g, "hotel-berlin", {}, fixed_now);
  ASSERT_TRUE(m);
  EXPECT_NE(m->envelope.find(R"("metadata":{"text_truncated":true})"), std::string::npos)
      << m->envelope;
}

struct typed_case {
  const char* name;
  void (*change)(channels::guest_message&, std::string& property_id);
};

class InboundMessageTypedRejects : public ::testing::TestWithParam<typed_case> {};

// The same bad message gives the same answer whether it came typed or as a body.
TEST_P(InboundMessageTypedRejects, AsTheBodyWithTheSameFieldsIs) {
  auto g = valid_guest();
  std::string property_id = "hotel-berlin";
  GetParam().change(g, property_id);
  inbound_limits limits;
  limits.max_text_bytes = 100;
  limits.max_attachments = 2;
  limits.max_metadata_bytes = 64;
  auto typed = validate_inbound_message(g, property_id, limits, fixed_now);
  auto parsed = parse_inbound_message(body_of(g, property_id), limits, fixed_now);
  ASSERT_FALSE(parsed) << "the body is refused";
  ASSERT_FALSE(typed) << "so is the typed message";
  EXPECT_EQ(typed.error().status, parsed.error().status);
  EXPECT_EQ(typed.error().code, parsed.error().code);
  EXPECT_EQ(typed.error().message, parsed.error().message);
  EXPECT_EQ(typed.error().field, parsed.error().field);
}

INSTANTIATE_TEST_SUITE_P(
    Table, InboundMessageTypedRejects,
    ::testing::Values(
        typed_case{"empty property", [](auto&, std::string& p) { p.clear(); }},
        typed_case{"bad property charset", [](auto&, std::string& p) { p = "p q"; }},
        typed_case{"long property", [](auto&, std::string& p) { p.assign(200, 'p'); }},
        typed_case{"unknown channel", [](auto& g, auto&) { g.channel = "fax"; }},
        typed_case{"empty channel", [](auto& g, auto&) { g.channel.clear(); }},
        typed_case{"empty external id", [](auto& g, auto&) { g.external_id.clear(); }},
        typed_case{"long external id", [](auto& g, auto&) { g.external_id.assign(300, 'e'); }},
        typed_case{"empty from", [](auto& g, auto&) { g.from.clear(); }},
        typed_case{"control chars in from", [](auto& g, auto&) { g.from = "a\nb"; }},
        typed_case{"NUL in to", [](auto& g, auto&) { g.to = std::string("+49\0", 4); }},
        typed_case{"long guest name", [](auto& g, auto&) { g.guest_name.assign(201, 'a'); }},
        typed_case{"control chars in guest name", [](auto& g, auto&) { g.guest_name = "A\tna"; }},
        typed_case{"long text", [](auto& g, auto&) { g.text.assign(101, 'x'); }},
        typed_case{"NUL in text", [](auto& g, auto&) { g.text = std::string("a\0b", 3); }},
        typed_case{"long content type",
                   [](auto& g, auto&) { g.content_type.assign(33, 'c'); }},
        typed_case{"bad sent_at", [](auto& g, auto&) { g.sent_at = "yesterday"; }},
        typed_case{"no text or attachments", [](auto& g, auto&) { g.text.clear(); }},
        typed_case{"too many attachments",
                   [](auto& g, auto&) {
                     g.attachments_json = R"([{"id":1},{"id":2},{"id":3}])";
                     g.attachment_count = 3;
                   }},
        typed_case{"metadata too large",
                   [](auto& g, auto&) {
                     g.metadata_json = R"({"note":")" + std::string(60, 'n') + R"("})";
                   }},
        typed_case{"the first of two faults",
                   [](auto& g, auto&) {
                     g.external_id.assign(300, 'e');
                     g.channel = "fax";
                   }}),
    [](const auto& info) {
      std::string n = info.param.name;
      for (auto& c : n) if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return n;
    });

TEST(InboundMessageTyped, TextThatIsNotUtf8IsRefused) {
  auto g = valid_guest();
  g.text = "caf\xc3";
  auto m = validate_inbound_message(g, "hotel-berlin", {}, fixed_now);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().status, 400);
  EXPECT_EQ(m.error().code, "malformed_json");
  EXPECT_EQ(m.error().field, "text");
  EXPECT_FALSE(parse_inbound_message(body_of(g, "hotel-berlin"), {}, fixed_now))
      << "nor is a body with it accepted";
}

TEST(AdapterAuth, BearerKeysAndProperties) {
  std::vector<adapter_key> keys = {{"wa", "wa-key-0123456789abc", {"hotel-berlin"}},
                                   {"all", "all-key-0123456789abc", {"*"}}};
  adapter_auth auth(keys);
  ASSERT_NE(auth.authenticate("Bearer wa-key-0123456789abc"), nullptr);
  EXPECT_EQ(auth.authenticate("Bearer wa-key-0123456789abc")->name, "wa");
  EXPECT_EQ(auth.authenticate("bearer all-key-0123456789abc")->name, "all");
  EXPECT_EQ(auth.authenticate("Bearer wa-key-0123456789ab"), nullptr);
  EXPECT_EQ(auth.authenticate("Basic wa-key-0123456789abc"), nullptr);
  EXPECT_EQ(auth.authenticate(""), nullptr);
  EXPECT_EQ(auth.authenticate("Bearer "), nullptr);
  EXPECT_TRUE(adapter_auth::allows(keys[0], "hotel-berlin"));
  EXPECT_FALSE(adapter_auth::allows(keys[0], "hotel-paris"));
  EXPECT_TRUE(adapter_auth::allows(keys[1], "hotel-paris"));
}

}  // namespace
}  // namespace bellhop::gateway
