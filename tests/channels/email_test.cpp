// The email adapter: webhook verification and parsing, the reply's RFC 5322 form, and how SMTP
// outcomes are classified. Every X-Bellhop-Signature here was computed by Python's hmac, not
// by this code, from the exact bytes of the body next to it:
//   python3 -c 'import hmac,hashlib; print(hmac.new(b"email-secret", BODY,
//   hashlib.sha256).hexdigest())'
#include "bellhop/channels/email.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cctype>
#include <string>
#include <vector>

namespace bellhop::channels {
namespace {

struct signed_body {
  std::string body, sig;  // sig: Python's, with the key "email-secret"
};

// An email with every field.
const signed_body full{
    R"json({"message_id":"<CAF1@mail.example.com>","from":"Ana Lima <Ana@Example.COM>","to":"Frontdesk@Hotel-Berlin.example","subject":"Late checkout","text":"Could we leave at 2 pm?","references":["<a@x>","b@x"],"in_reply_to":"<prev@hotel>","date":"2026-11-28T09:12:00Z"})json",
    "sha256=0d1a49c285803afe072281b0c52ffc9bba1fded02c50d9efa33c13a6eed89a9b"};
// A bare message id, from_name over the display name, References as one string in the forms
// mail clients write, an RFC 3339 date with a fraction and an offset.
const signed_body bare_id{
    R"json({"message_id":"abc@mail.example","from":"\"Lima, Ana \\\"Ana\\\"\" <ana@example.com>","from_name":"Ana","to":"<h@h.example>","text":"Hi","references":" <r1@x>  r2@x\t<r3@x><r4@x> ","in_reply_to":"r4@x","date":"2026-11-28T10:12:00.25+01:00"})json",
    "sha256=03875b8dc92d585e165b85cef7bd9e80673a5c447c958a82b5adee2c960afdbd"};
// A quoted display name and no from_name; a date that is no date.
const signed_body quoted_name{
    R"json({"message_id":"<q@x>","from":"\"Lima, Ana \\\"A\\\"\" <ana@example.com>","to":"h@h.example","text":"Hi","date":"2026-13-01T00:00:00Z"})json",
    "sha256=e8af53471882051b0a823227bd76ef45dbdf42c2e62f2d214dfe6a34053b30a2"};
// Attachments and no text: the first one's kind is the message's.
const signed_body attachments_only{
    R"json({"message_id":"<att@x>","from":"guest@example.com","to":"h@h.example","attachments":[{"filename":"voice \"1\"\\a.ogg","content_type":"Audio/OGG; codecs=opus","url":"https://f.example/v.ogg"},{"filename":"booking.pdf","content_type":"application/pdf","url":"https://f.example/b.pdf"},{"url":"http://f.example/x"}],"date":"yesterday"})json",
    "sha256=b4bc4cf0cd366dd1039a9f24faafa5112fe235721f695d8751985ef40d3509d4"};

const signed_body no_message_id{
    R"json({"from":"a@b.example","to":"h@h.example","text":"x"})json",
    "sha256=0fbb8bade436cee515b47926d28d8b78befe3222d9568d3e737a704570c426ac"};
const signed_body no_from{
    R"json({"message_id":"m@x","to":"h@h.example","text":"x"})json",
    "sha256=9d56adf6a1e152605c388c4286f924a0fd1acf63eb018e86cd76856bd5e67e70"};
const signed_body no_to{R"json({"message_id":"m@x","from":"a@b.example","text":"x"})json",
                        "sha256=8f67086e33980adfa493356e3191169d2f142ff2aea7ec14317da10dc537966e"};
const signed_body null_from{
    R"json({"message_id":"m@x","from":null,"to":"h@h.example","text":"x"})json",
    "sha256=15351751631fa7d465845ebb7e8efdfb21ba38b19088f65b588d9a4df4febc3e"};
const signed_body no_text{
    R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","subject":"s"})json",
    "sha256=bc71a45bde7cc3d6ce1a4939f2a563f98e8e1e6f021e7ea2cd76fad26b910ca1"};
const signed_body empty_text_no_files{
    R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"","attachments":[]})json",
    "sha256=b36ec39c520838e53092fdd4e1c0b6f2374d0aaf72d043ae513a24382ab37aa5"};
const signed_body attachment_without_url{
    R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":[{"filename":"a.pdf"}]})json",
    "sha256=a125891031d7a48ddc008369d4320920724ddce27a42138014e087375a9961fb"};

const signed_body not_json{
    R"json({"message_id":)json",
    "sha256=a4ab21046216e409c5caca04ad41fb3bf3c0a4ea00b2b58e8b87cc58f14b4417"};
const signed_body not_an_object{
    R"json(["message_id"])json",
    "sha256=6c512a041edff9354d9983b9cc4616631f80b976d26728c4fd80567358d21285"};
const signed_body too_deep{
    // 17 levels: the object and 16 arrays
    R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","x":[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]})json",
    "sha256=c3f10826604dd8683c2ec7ca4acd295a1a4d2c7a4cb5ef0301cfdd543cc2ab7a"};
const signed_body deepest_allowed{
    // 16 levels
    R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","x":[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]})json",
    "sha256=31f478c769191405cff4af7e66417608e982f868b874d9ef866f9e9f81ecdc2f"};

struct invalid_case {
  signed_body b;
  std::string field;  // what error_message must start with
};
const std::vector<invalid_case> invalid_cases = {
    {{R"json({"message_id":7,"from":"a@b.example","to":"h@h.example","text":"x"})json",
      "sha256=6eee125c46a873a594e617c5516fe6ec8107263ab898bd471f391ba793d6fd1b"},
     "message_id"},
    {{R"json({"message_id":"m@x","from":["a@b.example"],"to":"h@h.example","text":"x"})json",
      "sha256=5831d965ae92285955cd9f51f6820a17483cfb41555b8901e5d09c1c1f455da7"},
     "from"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":["x"]})json",
      "sha256=e92304fa8bffc5dc8189f36fa3900571af79748041c374a7e65c963e603943a8"},
     "text"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","subject":true})json",
      "sha256=500e8fa13b10160c31824063ce51e2def4ddfee83b8c7c8363643102f81b9db7"},
     "subject"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","from_name":3})json",
      "sha256=bba08c3b9f9b4c58d822c3c9d05dff58dce260eaeee169c0e88ca3db8bff5e3e"},
     "from_name"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","date":20261128})json",
      "sha256=b02361bc4c8909bf750c4a211270ffb9f4f343e94290bf96b5a3c417d12cf794"},
     "date"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","in_reply_to":{}})json",
      "sha256=b845b18c253f75f7ef49dc508d23ae3c7959c9124adf369e867221a651492549"},
     "in_reply_to"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","references":5})json",
      "sha256=19855deb982196d582c77433ae007dc68ad29c5baad70024d9196a8294cc5e7d"},
     "references"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","references":["<a@x>",5]})json",
      "sha256=cbb9029d55609549eb379b475e299cd70168f91452f667d138195b26f3427458"},
     "references"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","attachments":{"url":"https://f.example/a"}})json",
      "sha256=20caa7588e02e504a3c3142efcd6645e2368c8bae56178f768ab500943d6c0c1"},
     "attachments"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":["https://f.example/a"]})json",
      "sha256=3d2b498ad25ffcdf13d72be0e80dac11580a803a434743a74e7efc6afff9ae96"},
     "attachments[0]"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":[{"url":"https://f.example/a"},{"url":7}]})json",
      "sha256=10b656000eee85eaa3a2702c596885ed4c1bbadf33c72b8463d89685d9f4c249"},
     "attachments[1].url"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":[{"url":"javascript:alert(1)"}]})json",
      "sha256=af35a6f6ece90e02fc8561bf29472376abd828652f1ee3bbe58b787bf895a201"},
     "attachments[0].url"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":[{"url":"https://f.example/a","filename":1}]})json",
      "sha256=3cac5fcc7fb66a32bd23c1d5a04da05a51f79af0ae854a10f12ca17be619adbe"},
     "attachments[0].filename"},
    {{R"json({"message_id":"two words@x","from":"a@b.example","to":"h@h.example","text":"x"})json",
      "sha256=630babf001e939d5f5050fea636abc7bd7a3fcd0511c9fa60f9dfc9e0c6ac8f1"},
     "message_id"},
    {{R"json({"message_id":"m@x","from":"not an address","to":"h@h.example","text":"x"})json",
      "sha256=bf974910ff752077fd4a966403f53184aab60cfe2e572a1ace8bbd1e6378ee1a"},
     "from"},
    {{R"json({"message_id":"m@x","from":"a@b@c","to":"h@h.example","text":"x"})json",
      "sha256=36b75b05d6e3c5594c7e89ac15eaacae0732477be35c139b3a7d37695aeeea2e"},
     "from"},
    {{R"json({"message_id":"m@x","from":"Ana <@b.example>","to":"h@h.example","text":"x"})json",
      "sha256=81680b36aaca38eb38eabfb22c180e543d9b394125d2fa824b44aa4e1fac3531"},
     "from"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@","text":"x"})json",
      "sha256=ab80c0aa9084e709261e70e50465861a41c46264bb0dcfad9f330c2bb3a28cae"},
     "to"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","subject":"Hi\r\nBcc: all@x.example"})json",
      "sha256=eb8d8e790cfa87df7c1ba9574e0667b46b75d0f0b8ec8435941a02563ddd61b1"},
     "subject"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","subject":"Hi\nthere"})json",
      "sha256=e53bc2fd84a178df5120124aaf89a85c998d21e4eca94e31b7cfc6f9e4306589"},
     "subject"},
    {{R"json({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","from_name":"Ana\r"})json",
      "sha256=0056a0885db1843295e5fb3ed7808af966bb3c0973851d7a34dfd84374760de5"},
     "from_name"},
};

email::settings settings() {
  email::settings s;
  s.webhook_secret = "email-secret";
  s.from_address = "frontdesk@hotel-berlin.example";
  s.from_name = "Hotel Berlin";
  return s;
}

webhook post(const std::string& body, const std::string& sig,
             const std::string& content_type = "application/json") {
  webhook w;
  w.method = "POST";
  w.target = "/v1/webhooks/email";
  w.headers["content-type"] = content_type;
  if (!sig.empty()) w.headers["x-bellhop-signature"] = sig;
  w.body = body;
  return w;
}

webhook_result parse(const signed_body& b) {
  return email::parse_webhook(settings(), post(b.body, b.sig));
}

// ---- signatures ------------------------------------------------------------------------------

TEST(EmailSignature, IsPythonsHmac) {
  EXPECT_EQ(email::signature("email-secret", full.body), full.sig);
  EXPECT_EQ(email::signature("email-secret", no_to.body), no_to.sig);
  EXPECT_EQ(email::signature("email-secret", ""),
            "sha256=fcb9124b34ceba6de67c40a42ecca74e771cdf8f8b5eabdc71af44239435bc26");
}

TEST(EmailWebhook, UppercaseHexIsTheSameSignature) {
  std::string upper = full.sig;
  for (auto& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(upper.substr(0, 7), "SHA256=");
  EXPECT_TRUE(email::parse_webhook(settings(), post(full.body, upper)).accepted());
  EXPECT_TRUE(
      email::parse_webhook(settings(), post(full.body, "sha256=" + upper.substr(7))).accepted());
}

TEST(EmailWebhook, OneChangedByteIs401) {
  ASSERT_TRUE(parse(full).accepted());
  std::string changed = full.body;
  changed[changed.find("2 pm")] = '3';
  auto r = email::parse_webhook(settings(), post(changed, full.sig));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
  // The signature off by one hex digit.
  std::string sig = full.sig;
  sig.back() = sig.back() == '0' ? '1' : '0';
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, sig)).status, 401);
}

TEST(EmailWebhook, NoSignatureOrAnotherKeyOrAMalformedOneIs401) {
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, "")).status, 401);
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, "sha256=")).status, 401);
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, full.sig.substr(7))).status, 401);
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, "sha1=" + full.sig.substr(7))).status,
            401);
  EXPECT_EQ(email::parse_webhook(settings(), post(full.body, full.sig + "00")).status, 401);
  // hmac.new(b"other-secret", full.body, hashlib.sha256)
  EXPECT_EQ(email::parse_webhook(
                settings(),
                post(full.body,
                     "sha256=2fe1aa8c253ca351123a4fa1a264d52eec0e785754b421c44321a2cf7c9128e6"))
                .status,
            401);
}

TEST(EmailWebhook, NoSecretConfiguredRefusesEvenAnEmptyKeysSignature) {
  auto s = settings();
  s.webhook_secret.clear();
  // hmac.new(b"", full.body, hashlib.sha256): what a relay with no key would send.
  auto r = email::parse_webhook(
      s,
      post(full.body, "sha256=d283db8890353013d6e5c176a549cc5748f7f6ed2dda4ed39ee815ab5143c85b"));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
}

TEST(EmailWebhook, ContentTypeComesFirstThenTheSignatureThenJson) {
  auto r = email::parse_webhook(settings(), post(full.body, full.sig, "text/plain"));
  EXPECT_EQ(r.status, 415);
  EXPECT_EQ(r.error_code, "unsupported_media_type");
  EXPECT_EQ(
      email::parse_webhook(settings(), post(full.body, "", "application/x-www-form-urlencoded"))
          .status,
      415);
  EXPECT_EQ(email::parse_webhook(settings(),
                                 post(full.body, full.sig, "application/json; charset=latin1"))
                .status,
            415);
  EXPECT_TRUE(
      email::parse_webhook(settings(), post(full.body, full.sig, "Application/JSON; charset=UTF-8"))
          .accepted());
  webhook none = post(full.body, full.sig);
  none.headers.erase("content-type");
  EXPECT_EQ(email::parse_webhook(settings(), none).status, 415);
  // Not JSON and not signed: the signature is checked first.
  EXPECT_EQ(email::parse_webhook(settings(), post(not_json.body, "")).status, 401);
}

TEST(EmailWebhook, MalformedJsonIs400) {
  for (const auto* b : {&not_json, &not_an_object, &too_deep}) {
    auto r = parse(*b);
    EXPECT_EQ(r.status, 400) << b->body;
    EXPECT_EQ(r.error_code, "malformed_json") << b->body;
  }
  EXPECT_NE(parse(too_deep).error_message.find("nested"), std::string::npos);
  EXPECT_TRUE(parse(deepest_allowed).accepted()) << parse(deepest_allowed).error_message;
}

// ---- fields ----------------------------------------------------------------------------------

TEST(EmailWebhook, AnEmailBecomesOneGuestMessage) {
  auto r = parse(full);
  ASSERT_TRUE(r.accepted()) << r.error_code << ": " << r.error_message;
  EXPECT_EQ(r.reply_body, "");
  EXPECT_TRUE(r.statuses.empty());
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& g = r.messages[0];
  EXPECT_EQ(g.channel, "email");
  EXPECT_EQ(g.external_id, "<CAF1@mail.example.com>");
  EXPECT_EQ(g.from, "ana@example.com");
  EXPECT_EQ(g.guest_name, "Ana Lima");
  EXPECT_EQ(g.business, "frontdesk@hotel-berlin.example");
  EXPECT_EQ(g.to, "frontdesk@hotel-berlin.example");
  EXPECT_EQ(g.text, "Could we leave at 2 pm?");
  EXPECT_EQ(g.content_type, "text");
  EXPECT_EQ(g.sent_at, "2026-11-28T09:12:00Z");
  EXPECT_EQ(g.attachments_json, "[]");
  EXPECT_EQ(g.metadata_json, R"({"subject":"Late checkout","message_id":"<CAF1@mail.example.com>",)"
                             R"("in_reply_to":"<prev@hotel>","references":"<a@x> <b@x>"})");
}

TEST(EmailWebhook, BareIdsGetBracketsAndReferencesAStringOfThem) {
  auto r = parse(bare_id);
  ASSERT_TRUE(r.accepted()) << r.error_message;
  const auto& g = r.messages[0];
  EXPECT_EQ(g.external_id, "<abc@mail.example>");
  EXPECT_EQ(g.from, "ana@example.com");
  EXPECT_EQ(g.guest_name, "Ana");  // from_name wins over the display name
  EXPECT_EQ(g.to, "h@h.example");
  EXPECT_EQ(g.sent_at, "2026-11-28T10:12:00.25+01:00");
  EXPECT_EQ(g.metadata_json,
            R"({"subject":"","message_id":"<abc@mail.example>","in_reply_to":"<r4@x>",)"
            R"("references":"<r1@x> <r2@x> <r3@x> <r4@x>"})");
}

TEST(EmailWebhook, AQuotedDisplayNameIsUnquotedAndABadDateDropped) {
  auto r = parse(quoted_name);
  ASSERT_TRUE(r.accepted()) << r.error_message;
  EXPECT_EQ(r.messages[0].guest_name, "Lima, Ana \"A\"");
  EXPECT_EQ(r.messages[0].sent_at, "");
}

TEST(EmailWebhook, AttachmentsAloneAreEnoughAndEscaped) {
  auto r = parse(attachments_only);
  ASSERT_TRUE(r.accepted()) << r.error_message;
  const auto& g = r.messages[0];
  EXPECT_EQ(g.text, "");
  EXPECT_EQ(g.content_type, "audio");
  EXPECT_EQ(g.sent_at, "");
  EXPECT_EQ(
      g.attachments_json,
      R"([{"type":"audio","filename":"voice \"1\"\\a.ogg","mime_type":"Audio/OGG; codecs=opus","url":"https://f.example/v.ogg"},)"
      R"({"type":"document","filename":"booking.pdf","mime_type":"application/pdf","url":"https://f.example/b.pdf"},)"
      R"({"type":"document","filename":null,"mime_type":"application/octet-stream","url":"http://f.example/x"}])");
  EXPECT_EQ(g.metadata_json, R"({"subject":"","message_id":"<att@x>"})");
}

TEST(EmailWebhook, RequiredFieldsAreNamed) {
  const std::vector<std::pair<const signed_body*, std::string>> cases = {
      {&no_message_id, "message_id"},
      {&no_from, "from"},
      {&null_from, "from"},
      {&no_to, "to"},
      {&no_text, "text"},
      {&empty_text_no_files, "text"},
      {&attachment_without_url, "attachments[0].url"},
  };
  for (const auto& [b, field] : cases) {
    auto r = parse(*b);
    EXPECT_EQ(r.status, 422) << b->body;
    EXPECT_EQ(r.error_code, "missing_field") << b->body;
    EXPECT_EQ(r.error_message.rfind(field + " ", 0), 0u) << b->body << " -> " << r.error_message;
  }
}

TEST(EmailWebhook, WrongTypesBadAddressesAndLineBreaksAreInvalidFields) {
  for (const auto& [b, field] : invalid_cases) {
    auto r = parse(b);
    EXPECT_EQ(r.status, 422) << b.body;
    EXPECT_EQ(r.error_code, "invalid_field") << b.body;
    EXPECT_EQ(r.error_message.rfind(field + " ", 0), 0u) << b.body << " -> " << r.error_message;
  }
}

TEST(EmailWebhook, LongReferencesKeepTheRootAndTheLatest) {
  // 200 ids of 41 bytes: 8 399 bytes joined, more than the 4 000 kept. Python built the same
  // body to sign it:
  //   refs = " ".join("<id%03d-xxxxxxxxxxxxxxxxxxxx@mail.example>" % i for i in range(200))
  std::string refs;
  for (int i = 0; i < 200; ++i) {
    char id[64];
    std::snprintf(id, sizeof id, "<id%03d-xxxxxxxxxxxxxxxxxxxx@mail.example>", i);
    refs += (i == 0 ? "" : " ") + std::string(id);
  }
  const std::string body = R"({"message_id":"<m@x>","from":"a@b.example","to":"h@h.example",)"
                           R"("text":"x","references":")" +
                           refs + R"("})";
  auto r = email::parse_webhook(
      settings(),
      post(body, "sha256=f3316f1107f48a545aa4d9eff13747e6296f7a5e6d2e0e1a94700b133ffc5389"));
  ASSERT_TRUE(r.accepted()) << r.error_message;
  const auto& meta = r.messages[0].metadata_json;
  const auto at = meta.find(R"("references":")") + 14;
  const auto kept = meta.substr(at, meta.find('"', at) - at);
  EXPECT_LE(kept.size(), 4000u);
  EXPECT_GT(kept.size(), 3900u);
  EXPECT_EQ(kept.rfind("<id000-xxxxxxxxxxxxxxxxxxxx@mail.example> <id", 0), 0u) << kept;
  EXPECT_EQ(kept.substr(kept.size() - 41), "<id199-xxxxxxxxxxxxxxxxxxxx@mail.example>");
  EXPECT_EQ(kept.find("<id001-"), std::string::npos);
  // The latest ones, contiguous: from some id up to 199.
  const auto second = kept.find(' ') + 1;
  const int from_id = std::stoi(kept.substr(second + 3, 3));
  EXPECT_EQ(kept.size(), 41 + static_cast<std::size_t>(200 - from_id) * 42);
}

// ---- the reply -------------------------------------------------------------------------------

outbound_message reply(const std::string& text) {
  outbound_message m;
  m.id = "01JDQ0000000000000000000A1";
  m.channel = "email";
  m.to = "ana@example.com";
  m.text = text;
  return m;
}

const std::string date = "Sat, 28 Nov 2026 16:00:00 +0000";

std::string body_of(const email::built_mail& b) {
  return b.m.data.substr(b.m.data.find("\r\n\r\n") + 4);
}

std::string headers_of(const email::built_mail& b) {
  return b.m.data.substr(0, b.m.data.find("\r\n\r\n") + 2);
}

// A header's value, unfolded (RFC 5322 2.2.3: the CRLFs of folds removed).
std::string header_value(const email::built_mail& b, const std::string& name) {
  const auto h = headers_of(b);
  auto at = h.find("\r\n" + name + ": ");
  at = h.rfind(name + ": ", 0) == 0 ? 0 : (at == std::string::npos ? at : at + 2);
  if (at == std::string::npos) return "<absent>";
  std::string out;
  auto p = at + name.size() + 2;
  while (true) {
    const auto end = h.find("\r\n", p);
    out += h.substr(p, end - p);
    if (end + 2 >= h.size() || (h[end + 2] != ' ' && h[end + 2] != '\t')) break;
    p = end + 2;
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& data) {
  std::vector<std::string> out;
  std::size_t p = 0;
  while (p < data.size()) {
    const auto end = data.find("\r\n", p);
    out.push_back(data.substr(p, end - p));
    if (end == std::string::npos) break;
    p = end + 2;
  }
  return out;
}

std::string base64_decoded(const std::string& v) {
  std::string out(v.size(), '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(v.data()), static_cast<int>(v.size()));
  out.resize(static_cast<std::size_t>(n) - std::count(v.end() - 2, v.end(), '='));
  return out;
}

// RFC 2047: the text of "=?UTF-8?B?…?=" words separated by folding white space.
std::string decode_words(const std::string& unfolded) {
  std::string out;
  std::size_t p = 0;
  while ((p = unfolded.find("=?UTF-8?B?", p)) != std::string::npos) {
    const auto end = unfolded.find("?=", p + 10);
    out += base64_decoded(unfolded.substr(p + 10, end - p - 10));
    p = end + 2;
  }
  return out;
}

// RFC 2045 6.7, decoding: what a mail client shows.
std::string qp_decoded(const std::string& body) {
  std::string out;
  for (std::size_t i = 0; i < body.size(); ++i) {
    if (body[i] != '=') {
      out += body[i];
    } else if (body.compare(i + 1, 2, "\r\n") == 0) {
      i += 2;  // a soft break
    } else {
      out += static_cast<char>(std::stoi(body.substr(i + 1, 2), nullptr, 16));
      i += 2;
    }
  }
  return out;
}

TEST(EmailMail, AReplyInTheGuestsThreadExactly) {
  auto b = email::build_mail(
      settings(), reply("Checkout is at 11:00.\nLate checkout until 14:00 costs 30 EUR = fair."),
      {"Late checkout", "<g1@mail.example>", "<g0@mail.example>"}, date);
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(b.m.envelope_from, "frontdesk@hotel-berlin.example");
  EXPECT_EQ(b.m.envelope_to, "ana@example.com");
  EXPECT_EQ(b.m.message_id, "<01JDQ0000000000000000000A1@hotel-berlin.example>");
  EXPECT_EQ(b.m.data,
            "From: Hotel Berlin <frontdesk@hotel-berlin.example>\r\n"
            "To: ana@example.com\r\n"
            "Subject: Re: Late checkout\r\n"
            "Date: Sat, 28 Nov 2026 16:00:00 +0000\r\n"
            "Message-ID: <01JDQ0000000000000000000A1@hotel-berlin.example>\r\n"
            "In-Reply-To: <g1@mail.example>\r\n"
            "References: <g0@mail.example> <g1@mail.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
            "Checkout is at 11:00.\r\n"
            "Late checkout until 14:00 costs 30 EUR =3D fair.\r\n");
}

TEST(EmailMail, NoThreadNoNameAndAnotherIdDomain) {
  auto s = settings();
  s.from_name = "";
  s.message_id_domain = "bellhop.hotel-berlin.example";
  auto m = reply("Hello");
  m.to = "Ana Lima <Ana@Example.com>";
  auto b = email::build_mail(s, m, {}, date);
  ASSERT_TRUE(b.ok) << b.error;
  EXPECT_EQ(b.m.envelope_to, "ana@example.com");
  EXPECT_EQ(b.m.message_id, "<01JDQ0000000000000000000A1@bellhop.hotel-berlin.example>");
  EXPECT_EQ(headers_of(b),
            "From: frontdesk@hotel-berlin.example\r\n"
            "To: ana@example.com\r\n"
            "Subject: Your message\r\n"
            "Date: Sat, 28 Nov 2026 16:00:00 +0000\r\n"
            "Message-ID: <01JDQ0000000000000000000A1@bellhop.hotel-berlin.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n");
  EXPECT_EQ(body_of(b), "Hello\r\n");
  // A thread with a subject but no Message-ID: "Re:" yes, In-Reply-To no.
  b = email::build_mail(s, m, {"Booking", "", "<old@x>"}, date);
  EXPECT_EQ(header_value(b, "Subject"), "Re: Booking");
  EXPECT_EQ(header_value(b, "In-Reply-To"), "<absent>");
  EXPECT_EQ(header_value(b, "References"), "<absent>");
  EXPECT_EQ(b.m.data.find("Auto-Submitted"), std::string::npos);
}

TEST(EmailMail, SubjectRules) {
  auto subject = [](const email::thread_info& t, const char* extra = nullptr) {
    auto m = reply("x");
    if (extra != nullptr) m.extras["subject"] = extra;
    auto b = email::build_mail(settings(), m, t, date);
    EXPECT_TRUE(b.ok) << b.error;
    return header_value(b, "Subject");
  };
  EXPECT_EQ(subject({"Hello", "<m@x>", ""}), "Re: Hello");
  EXPECT_EQ(subject({"RE: Hello", "<m@x>", ""}), "RE: Hello");
  EXPECT_EQ(subject({"re:Hello", "<m@x>", ""}), "re:Hello");
  EXPECT_EQ(subject({"Regarding rooms", "<m@x>", ""}), "Re: Regarding rooms");
  EXPECT_EQ(subject({"", "<m@x>", ""}), "Your message");
  EXPECT_EQ(subject({"", "", ""}), "Your message");
  EXPECT_EQ(subject({"Hello", "<m@x>", ""}, "Your invoice"), "Your invoice");
  EXPECT_EQ(subject({"Hello", "<m@x>", ""}, ""), "Re: Hello");  // an empty extra is none
  // Not ASCII: RFC 2047 words of the UTF-8 bytes; Python: base64.b64encode("Re: Frühstück")
  EXPECT_EQ(subject({"Frühstück", "<m@x>", ""}), "=?UTF-8?B?UmU6IEZyw7xoc3TDvGNr?=");
}

TEST(EmailMail, ALongUtf8SubjectIsSeveralWordsOnFoldedLines) {
  std::string long_subject;
  for (int i = 0; i < 12; ++i) long_subject += "Frühstück für zwei, ";
  long_subject += "bitte ☕";
  auto m = reply("x");
  m.extras["subject"] = long_subject;
  auto b = email::build_mail(settings(), m, {}, date);
  ASSERT_TRUE(b.ok) << b.error;
  const auto value = header_value(b, "Subject");
  EXPECT_EQ(decode_words(value), long_subject);
  std::size_t words = 0;
  for (std::size_t p = 0; (p = value.find("=?UTF-8?B?", p)) != std::string::npos; ++words) {
    const auto end = value.find("?=", p + 10) + 2;
    EXPECT_LE(end - p, 75u);
    p = end;
  }
  EXPECT_GT(words, 4u);
  // One word per line: "Subject: =?…?=" then " =?…?=" lines, none past 78.
  const auto h = headers_of(b);
  const auto at = h.find("Subject: ");
  const auto lines = lines_of(h.substr(at, h.find("\r\nDate:") - at));
  ASSERT_EQ(lines.size(), words);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_LE(lines[i].size(), 78u) << lines[i];
    EXPECT_EQ(lines[i].rfind(i == 0 ? "Subject: =?UTF-8?B?" : " =?UTF-8?B?", 0), 0u) << lines[i];
  }
}

TEST(EmailMail, LongAsciiHeadersAreFoldedAtSpaces) {
  std::string refs;
  for (int i = 0; i < 30; ++i) refs += "<ref" + std::to_string(i) + "@mail.example.com> ";
  const std::string subject =
      "A question about the breakfast, the parking garage and a late checkout on Sunday please";
  auto m = reply("x");
  m.extras["subject"] = subject;
  auto b = email::build_mail(settings(), m, {"s", "<g@mail.example>", refs}, date);
  ASSERT_TRUE(b.ok) << b.error;
  for (const auto& line : lines_of(headers_of(b))) EXPECT_LE(line.size(), 78u) << line;
  EXPECT_EQ(header_value(b, "Subject"), subject);
  EXPECT_EQ(header_value(b, "References"), refs + "<g@mail.example>");
}

TEST(EmailMail, TheSendersNameIsQuotedOrEncoded) {
  auto s = settings();
  s.from_name = "Berlin, Hotel \"Mitte\"";
  auto b = email::build_mail(s, reply("x"), {}, date);
  EXPECT_EQ(b.m.data.rfind(
                "From: \"Berlin, Hotel \\\"Mitte\\\"\" <frontdesk@hotel-berlin.example>\r\n", 0),
            0u);
  s.from_name = "Hôtel";  // Python: base64.b64encode("Hôtel".encode())
  b = email::build_mail(s, reply("x"), {}, date);
  EXPECT_EQ(b.m.data.rfind("From: =?UTF-8?B?SMO0dGVs?= <frontdesk@hotel-berlin.example>\r\n", 0),
            0u);
}

TEST(EmailMail, QuotedPrintableBreaksLongLinesAndEncodesWhatItMust) {
  const std::string long_line(100, 'a');
  auto b = email::build_mail(settings(), reply(long_line + "\nÄ tab\t\nend "), {}, date);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(body_of(b), std::string(75, 'a') + "=\r\n" + std::string(25, 'a') +
                            "\r\n=C3=84 tab=09\r\nend=20\r\n");
}

TEST(EmailMail, QuotedPrintableKeepsCrlfAndNeverSplitsAnEscape) {
  // CRLF stays one line end; LF becomes one; '=' is escaped; a run of multi-byte characters is
  // broken between escapes, never inside one.
  std::string text = "a=b\r\nc\nd\r\n";
  for (int i = 0; i < 40; ++i) text += "ü";
  text += "\n" + std::string(80, '=');
  auto b = email::build_mail(settings(), reply(text), {}, date);
  ASSERT_TRUE(b.ok);
  const auto body = body_of(b);
  EXPECT_EQ(body.rfind("a=3Db\r\nc\r\nd\r\n=C3=BC", 0), 0u) << body;
  for (const auto& line : lines_of(body)) {
    EXPECT_LE(line.size(), 76u) << line;
    for (std::size_t eq = line.find('='); eq != std::string::npos; eq = line.find('=', eq + 1)) {
      const bool soft_break = eq + 1 == line.size();
      EXPECT_TRUE(soft_break || (eq + 3 <= line.size() && std::isxdigit(line[eq + 1]) &&
                                 std::isxdigit(line[eq + 2])))
          << line;
    }
  }
  std::string want;  // the text with CRLF line ends
  for (char c : text) {
    if (c == '\n' && (want.empty() || want.back() != '\r')) want += '\r';
    want += c;
  }
  EXPECT_EQ(qp_decoded(body), want + "\r\n");
  EXPECT_EQ(body.find("\n\r\n\r\n"), std::string::npos);  // one line end, not two
}

TEST(EmailMail, ALineStartingWithADotHasItEncoded) {
  // "." alone on a line ends SMTP DATA; the SMTP client dot-stuffs, this is belt and braces.
  auto b = email::build_mail(settings(), reply(".\nSee you. Bye\n.."), {}, date);
  EXPECT_EQ(body_of(b), "=2E\r\nSee you. Bye\r\n=2E.\r\n");
}

TEST(EmailMail, ATextEndingInANewlineGetsNoBlankLine) {
  auto b = email::build_mail(settings(), reply("Thanks!\n"), {}, date);
  EXPECT_EQ(body_of(b), "Thanks!\r\n");
}

TEST(EmailMail, AttachmentsBecomeLinksUnderTheText) {
  auto m = reply("Your invoice:");
  m.attachments_json =
      R"([{"type":"document","url":"https://files.example/inv.pdf","filename":"invoice.pdf"},)"
      R"({"type":"image","url":"https://files.example/map.png"},{"type":"image"}])";
  auto b = email::build_mail(settings(), m, {}, date);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(qp_decoded(body_of(b)),
            "Your invoice:\r\n\r\ninvoice.pdf: https://files.example/inv.pdf\r\n"
            "https://files.example/map.png\r\n");
}

TEST(EmailMail, HeaderInjectionIsRefused) {
  auto m = reply("x");
  m.extras["subject"] = "Hi\r\nBcc: everyone@example.com";
  auto r = email::build_mail(settings(), m, {}, date);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("subject"), std::string::npos) << r.error;
  EXPECT_FALSE(email::build_mail(settings(), reply("x"), {"s\nBcc: x@y", "<a@b>", ""}, date).ok);
  EXPECT_FALSE(email::build_mail(settings(), reply("x"), {"s", "<a@b>\r\nBcc: x@y", ""}, date).ok);
  EXPECT_FALSE(
      email::build_mail(settings(), reply("x"), {"s", "<a@b>", "<c@d>\rBcc: x@y"}, date).ok);
  EXPECT_FALSE(email::build_mail(settings(), reply("x"), {}, "Sat\r\nBcc: x@y").ok);
  auto s = settings();
  s.from_name = "Hotel\nBcc: x@y";
  EXPECT_FALSE(email::build_mail(s, reply("x"), {}, date).ok);
  s = settings();
  s.message_id_domain = "x>\r\nBcc: x@y";
  EXPECT_FALSE(email::build_mail(s, reply("x"), {}, date).ok);
  auto bad_id = reply("x");
  bad_id.id = "a> b";
  EXPECT_FALSE(email::build_mail(settings(), bad_id, {}, date).ok);
  // The body is not a header: a line break there is only a line break.
  auto body = email::build_mail(settings(), reply("x\r\nBcc: y@z"), {}, date);
  ASSERT_TRUE(body.ok);
  EXPECT_EQ(header_value(body, "Bcc"), "<absent>");
}

TEST(EmailMail, BadAddressesAreRefused) {
  for (const char* to : {"+4915112345678", "", "ana@", "@example.com", "a@b@c", "ana @example.com",
                         "ana@example.com\r\nBcc: x@y", "a,b@example.com"}) {
    auto bad_to = reply("x");
    bad_to.to = to;
    auto r = email::build_mail(settings(), bad_to, {}, date);
    EXPECT_FALSE(r.ok) << to;
    EXPECT_NE(r.error.find("not an email address"), std::string::npos) << to;
  }
  auto bad_from = settings();
  bad_from.from_address = "front desk";
  auto r = email::build_mail(bad_from, reply("x"), {}, date);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("from_address"), std::string::npos);
  auto long_to = reply("x");
  long_to.to = std::string(250, 'a') + "@b.example";  // 260 bytes: over RFC 5321's 254
  EXPECT_FALSE(email::build_mail(settings(), long_to, {}, date).ok);
}

// ---- sends -----------------------------------------------------------------------------------

TEST(EmailSend, OutcomesByCurlAndSmtpCodes) {
  struct row {
    int curl;
    long smtp;
    send_outcome want;
  };
  const std::vector<row> rows = {
      {0, 250, send_outcome::sent},       {0, 0, send_outcome::sent},
      {0, 221, send_outcome::sent},       {55, 451, send_outcome::transient},
      {55, 421, send_outcome::transient}, {55, 450, send_outcome::transient},
      {55, 452, send_outcome::transient}, {67, 454, send_outcome::transient},
      {0, 451, send_outcome::transient},  {55, 550, send_outcome::permanent},
      {55, 551, send_outcome::permanent}, {55, 553, send_outcome::permanent},
      {55, 554, send_outcome::permanent}, {9, 550, send_outcome::permanent},
      {65, 550, send_outcome::permanent}, {65, 0, send_outcome::transient},
      {67, 535, send_outcome::permanent}, {67, 0, send_outcome::permanent},
      {55, 530, send_outcome::permanent}, {94, 0, send_outcome::permanent},
      {6, 0, send_outcome::transient},    {7, 0, send_outcome::transient},
      {28, 0, send_outcome::transient},   {35, 0, send_outcome::transient},
      {52, 0, send_outcome::transient},   {55, 0, send_outcome::transient},
      {56, 0, send_outcome::transient},   {56, 250, send_outcome::transient},
      {64, 0, send_outcome::permanent},   {60, 0, send_outcome::permanent},
      {77, 0, send_outcome::permanent},   {3, 0, send_outcome::permanent},
      {1, 0, send_outcome::permanent},    {99, 0, send_outcome::transient},
  };
  for (const auto& r : rows) {
    auto out = email::interpret_send(r.curl, r.smtp, "words", "<id@h>");
    EXPECT_EQ(out.outcome, r.want) << r.curl << "/" << r.smtp;
    EXPECT_EQ(out.provider_message_id, r.want == send_outcome::sent ? "<id@h>" : "")
        << r.curl << "/" << r.smtp;
    EXPECT_EQ(out.reason.empty(), r.want == send_outcome::sent) << r.curl << "/" << r.smtp;
    EXPECT_EQ(out.retry_after.count(), 0);
  }
}

TEST(EmailSend, ReasonsSayWhatTheServerSaid) {
  auto refused = email::interpret_send(55, 550, "RCPT failed: 550", "<id@h>");
  EXPECT_EQ(refused.error_code, "550");
  EXPECT_EQ(refused.reason, "SMTP 550: RCPT failed: 550");
  auto deferred = email::interpret_send(55, 451, "try later", "<id@h>");
  EXPECT_EQ(deferred.error_code, "451");
  EXPECT_EQ(deferred.reason, "SMTP 451: try later");
  auto auth = email::interpret_send(67, 535, "Login denied", "");
  EXPECT_EQ(auth.error_code, "535");
  EXPECT_EQ(auth.reason.rfind("SMTP 535: Login denied", 0), 0u) << auth.reason;
  EXPECT_NE(auth.reason.find("authentication"), std::string::npos) << auth.reason;
  EXPECT_NE(email::interpret_send(67, 0, "Login denied", "").reason.find("authentication"),
            std::string::npos);
  auto no_tls = email::interpret_send(64, 0, "", "");
  EXPECT_NE(no_tls.reason.find("STARTTLS"), std::string::npos) << no_tls.reason;
  auto cert = email::interpret_send(60, 0, "", "");
  EXPECT_NE(cert.reason.find("certificate"), std::string::npos) << cert.reason;
  auto down = email::interpret_send(7, 0, "Couldn't connect to server", "");
  EXPECT_EQ(down.error_code, "");
  EXPECT_NE(down.reason.find("curl 7: Couldn't connect to server"), std::string::npos)
      << down.reason;
}

}  // namespace
}  // namespace bellhop::channels
