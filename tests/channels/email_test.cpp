// The email adapter: webhook verification and parsing, the reply's RFC 5322 form, and how SMTP
// outcomes are classified. Signatures here were computed by Python's hmac, not by this code:
//   python3 -c 'import hmac,hashlib; print(hmac.new(b"email-secret", BODY, hashlib.sha256).hexdigest())'
// (Separately, 300 random replies were parsed back by Python's email package: bodies, names,
// subjects round-trip and no line passes 78 characters.)
#include "bellhop/channels/email.hpp"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

namespace bellhop::channels {
namespace {

const std::string body =
    R"({"message_id":"<CAF1@mail.example.com>","from":"Ana Lima <Ana@Example.COM>","to":"Frontdesk@Hotel-Berlin.example","subject":"Late checkout","text":"Could we leave at 2 pm?","references":["<a@x>","b@x"],"in_reply_to":"<prev@hotel>","date":"2026-11-28T09:12:00Z"})";
const std::string python_signature =
    "sha256=0d1a49c285803afe072281b0c52ffc9bba1fded02c50d9efa33c13a6eed89a9b";

email::settings settings() {
  email::settings s;
  s.webhook_secret = "email-secret";
  s.from_address = "frontdesk@hotel-berlin.example";
  s.from_name = "Hotel Berlin";
  return s;
}

webhook post(const std::string& b, const std::string& sig,
             const std::string& content_type = "application/json") {
  webhook w;
  w.method = "POST";
  w.target = "/v1/webhooks/email";
  w.headers["content-type"] = content_type;
  if (!sig.empty()) w.headers["x-bellhop-signature"] = sig;
  w.body = b;
  return w;
}

// Signed with this code's signature(), which the first test ties to Python's.
webhook_result parse(const std::string& b) {
  return email::parse_webhook(settings(), post(b, email::signature("email-secret", b)));
}

TEST(EmailWebhook, APythonSignedEmailBecomesOneGuestMessage) {
  EXPECT_EQ(email::signature("email-secret", body), python_signature);
  auto r = email::parse_webhook(settings(), post(body, python_signature));
  ASSERT_TRUE(r.accepted()) << r.error_code << ": " << r.error_message;
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
  EXPECT_EQ(g.metadata_json,
            R"({"subject":"Late checkout","message_id":"<CAF1@mail.example.com>",)"
            R"("in_reply_to":"<prev@hotel>","references":"<a@x> <b@x>"})");
}

TEST(EmailWebhook, UppercaseHexIsTheSameSignature) {
  std::string upper = python_signature;
  for (std::size_t i = 7; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(upper[i]));
  EXPECT_TRUE(email::parse_webhook(settings(), post(body, upper)).accepted());
}

TEST(EmailWebhook, AnyChangeOrNoSignatureOrNoSecretIs401) {
  std::string changed = body;
  changed[changed.find("2 pm")] = '3';
  EXPECT_EQ(email::parse_webhook(settings(), post(changed, python_signature)).status, 401);
  EXPECT_EQ(email::parse_webhook(settings(), post(body, "")).status, 401);
  EXPECT_EQ(email::parse_webhook(settings(), post(body, "sha256=00")).status, 401);
  auto no_secret = settings();
  no_secret.webhook_secret.clear();
  auto r = email::parse_webhook(no_secret, post(body, email::signature("", body)));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
}

TEST(EmailWebhook, ContentTypeAndJsonShapeAreChecked) {
  EXPECT_EQ(email::parse_webhook(settings(), post(body, python_signature, "text/plain")).status,
            415);
  EXPECT_TRUE(
      email::parse_webhook(settings(), post(body, python_signature, "application/json; charset=utf-8"))
          .accepted());
  EXPECT_EQ(parse("{not json").status, 400);
  EXPECT_EQ(parse("[1]").error_code, "malformed_json");
  EXPECT_EQ(parse(std::string(100, '[') + std::string(100, ']')).status, 400);
}

TEST(EmailWebhook, RequiredFieldsAreNamed) {
  auto r = parse(R"({"from":"a@b.example","to":"h@h.example","text":"x"})");
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.error_code, "missing_field");
  EXPECT_NE(r.error_message.find("message_id"), std::string::npos);
  EXPECT_NE(parse(R"({"message_id":"m@x","to":"h@h.example","text":"x"})").error_message.find("from"),
            std::string::npos);
  EXPECT_NE(parse(R"({"message_id":"m@x","from":"a@b.example","text":"x"})").error_message.find("to"),
            std::string::npos);
  auto empty = parse(R"({"message_id":"m@x","from":"a@b.example","to":"h@h.example"})");
  EXPECT_EQ(empty.error_code, "missing_field");
  EXPECT_NE(empty.error_message.find("text or attachments"), std::string::npos);
}

TEST(EmailWebhook, WrongTypesBadAddressesAndLineBreaksAreInvalidFields) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"message_id":7,"from":"a@b.example","to":"h@h.example","text":"x"})", "message_id"},
      {R"({"message_id":"m@x","from":"not an address","to":"h@h.example","text":"x"})", "from"},
      {R"({"message_id":"m@x","from":"a@b@c","to":"h@h.example","text":"x"})", "from"},
      {R"({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","subject":"a\r\nBcc: x@y"})",
       "subject"},
      {R"({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":["x"]})", "text"},
      {R"({"message_id":"m@x","from":"a@b.example","to":"h@h.example","text":"x","references":5})",
       "references"},
      {R"({"message_id":"m@x","from":"a@b.example","to":"h@h.example","attachments":[{"filename":"a.pdf"}]})",
       "attachments"},
  };
  for (const auto& [json, field] : cases) {
    auto r = parse(json);
    EXPECT_EQ(r.status, 422) << json;
    EXPECT_EQ(r.error_code, "invalid_field") << json;
    EXPECT_EQ(r.error_message.rfind(field, 0), 0u) << json << " -> " << r.error_message;
  }
}

TEST(EmailWebhook, BareIdsGetBracketsAndAttachmentsAlone) {
  auto r = parse(
      R"({"message_id":"abc@mail.example","from":"guest@example.com","from_name":"Guest","to":"<h@h.example>",)"
      R"("attachments":[{"filename":"booking.pdf","content_type":"application/pdf","url":"https://f.example/b.pdf"},)"
      R"({"content_type":"image/jpeg","url":"https://f.example/p.jpg"}],"date":"yesterday"})");
  ASSERT_TRUE(r.accepted()) << r.error_message;
  const auto& g = r.messages[0];
  EXPECT_EQ(g.external_id, "<abc@mail.example>");
  EXPECT_EQ(g.guest_name, "Guest");
  EXPECT_EQ(g.content_type, "document");
  EXPECT_EQ(g.sent_at, "");
  EXPECT_EQ(g.attachments_json,
            R"([{"type":"document","filename":"booking.pdf","mime_type":"application/pdf","url":"https://f.example/b.pdf"},)"
            R"({"type":"image","filename":null,"mime_type":"image/jpeg","url":"https://f.example/p.jpg"}])");
}

TEST(EmailWebhook, ALongReferencesChainKeepsItsRootAndItsLatestIds) {
  std::string refs;
  for (int i = 0; i < 200; ++i) refs += (i ? " " : "") + std::string("<id") + std::to_string(i) + "@mail.example>";
  auto r = parse(R"({"message_id":"<m@x>","from":"a@b.example","to":"h@h.example","text":"x","references":")" +
                 refs + "\"}");
  ASSERT_TRUE(r.accepted()) << r.error_message;
  rapidjson::Document meta;
  meta.Parse(r.messages[0].metadata_json.c_str());
  const std::string kept = meta["references"].GetString();
  EXPECT_LE(kept.size(), 1000u);
  EXPECT_EQ(kept.rfind("<id0@mail.example> ", 0), 0u) << kept;
  EXPECT_TRUE(kept.ends_with(" <id199@mail.example>")) << kept;
}

outbound_message reply(const std::string& text) {
  outbound_message m;
  m.id = "01JDQ0000000000000000000A1";
  m.channel = "email";
  m.to = "ana@example.com";
  m.text = text;
  return m;
}

const std::string date = "Sat, 28 Nov 2026 16:00:00 +0000";

TEST(EmailMail, AReplyInTheGuestsThreadExactly) {
  auto b = email::build_mail(settings(),
                             reply("Checkout is at 11:00.\nLate checkout until 14:00 costs 30 EUR = fair."),
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

TEST(EmailMail, SubjectRules) {
  auto subject = [](const email::thread_info& t, const std::string& extra = "") {
    auto m = reply("x");
    if (!extra.empty()) m.extras["subject"] = extra;
    auto b = email::build_mail(settings(), m, t, date);
    const auto at = b.m.data.find("Subject: ");
    return b.m.data.substr(at + 9, b.m.data.find("\r\n", at) - at - 9);
  };
  EXPECT_EQ(subject({"RE: Hello", "<m@x>", ""}), "RE: Hello");
  EXPECT_EQ(subject({"", "", ""}), "Your message");
  EXPECT_EQ(subject({"Hello", "<m@x>", ""}, "Your invoice"), "Your invoice");
  // Not ASCII: RFC 2047 words of the UTF-8 bytes ("Re: Frühstück" in base64).
  EXPECT_EQ(subject({"Frühstück", "<m@x>", ""}), "=?UTF-8?B?UmU6IEZyw7xoc3TDvGNr?=");
}

TEST(EmailMail, NoThreadMeansNoInReplyTo) {
  auto b = email::build_mail(settings(), reply("x"), {}, date);
  ASSERT_TRUE(b.ok);
  EXPECT_EQ(b.m.data.find("In-Reply-To"), std::string::npos);
  EXPECT_EQ(b.m.data.find("References"), std::string::npos);
}

TEST(EmailMail, QuotedPrintableBreaksLongLinesAndEncodesWhatItMust) {
  const std::string long_line(100, 'a');
  auto b = email::build_mail(settings(), reply(long_line + "\nÄ tab\t\nend "), {}, date);
  ASSERT_TRUE(b.ok);
  const auto text = b.m.data.substr(b.m.data.find("\r\n\r\n") + 4);
  EXPECT_EQ(text, std::string(75, 'a') + "=\r\n" + std::string(25, 'a') +
                      "\r\n=C3=84 tab=09\r\nend=20\r\n");
}

TEST(EmailMail, HeaderInjectionAndBadAddressesAreRefused) {
  auto m = reply("x");
  m.extras["subject"] = "Hi\r\nBcc: everyone@example.com";
  EXPECT_FALSE(email::build_mail(settings(), m, {}, date).ok);
  EXPECT_FALSE(email::build_mail(settings(), reply("x"), {"s", "<a@b>\r\nBcc: x@y", ""}, date).ok);
  auto bad_to = reply("x");
  bad_to.to = "+4915112345678";
  auto r = email::build_mail(settings(), bad_to, {}, date);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("not an email address"), std::string::npos);
  auto bad_from = settings();
  bad_from.from_address = "front desk";
  EXPECT_FALSE(email::build_mail(bad_from, reply("x"), {}, date).ok);
}

TEST(EmailMail, NamesWithSpecialsAreQuotedAndOthersEncoded) {
  auto s = settings();
  s.from_name = "Berlin, Hotel";
  auto b = email::build_mail(s, reply("x"), {}, date);
  EXPECT_EQ(b.m.data.rfind("From: \"Berlin, Hotel\" <frontdesk@hotel-berlin.example>\r\n", 0), 0u);
  s.from_name = "Hôtel";
  b = email::build_mail(s, reply("x"), {}, date);
  EXPECT_EQ(b.m.data.rfind("From: =?UTF-8?B?SMO0dGVs?= <frontdesk@hotel-berlin.example>\r\n", 0),
            0u);
}

TEST(EmailSend, OutcomesByCurlAndSmtpCodes) {
  struct row {
    int curl;
    long smtp;
    send_outcome want;
  };
  const std::vector<row> rows = {
      {0, 250, send_outcome::sent},       {0, 0, send_outcome::sent},
      {55, 451, send_outcome::transient}, {55, 421, send_outcome::transient},
      {55, 550, send_outcome::permanent}, {55, 553, send_outcome::permanent},
      {67, 535, send_outcome::permanent}, {67, 0, send_outcome::permanent},
      {7, 0, send_outcome::transient},    {28, 0, send_outcome::transient},
      {35, 0, send_outcome::transient},   {64, 0, send_outcome::permanent},
      {60, 0, send_outcome::permanent},   {3, 0, send_outcome::permanent},
      {56, 0, send_outcome::transient},
  };
  for (const auto& r : rows) {
    auto out = email::interpret_send(r.curl, r.smtp, "words", "<id@h>");
    EXPECT_EQ(out.outcome, r.want) << r.curl << "/" << r.smtp;
    if (r.want == send_outcome::sent) {
      EXPECT_EQ(out.provider_message_id, "<id@h>");
    }
  }
  auto refused = email::interpret_send(55, 550, "RCPT failed: 550", "<id@h>");
  EXPECT_EQ(refused.error_code, "550");
  EXPECT_NE(refused.reason.find("SMTP 550"), std::string::npos) << refused.reason;
  EXPECT_NE(email::interpret_send(67, 535, "Login denied", "").reason.find("authentication"),
            std::string::npos);
}

}  // namespace
}  // namespace bellhop::channels
