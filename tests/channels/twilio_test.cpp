#include "bellhop/channels/twilio.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bellhop/channels/form.hpp"

namespace bellhop::channels::twilio {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using params_t = std::vector<std::pair<std::string, std::string>>;

const std::string account_sid = "AC3f9d1c0a6b2e4f8a9c7d5e3b1a0f2c4d";
const std::string auth_token = "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f";
const std::string public_url = "https://gw.example-hotel.com";
const std::string sms_target = "/v1/webhooks/twilio/sms";
const std::string status_target = "/v1/webhooks/twilio/status";
const std::string form_type = "application/x-www-form-urlencoded";

settings test_settings() {
  return {account_sid, auth_token, "+15017122661", "https://api.twilio.com", public_url};
}

// ---- an independent signer: Python's hmac, hashlib, base64 and urllib -------------------------

struct python_signed {
  std::string signature;
  std::string body;  // the params as urllib.parse.urlencode writes them ('+' for spaces)
};

// Signs `params` for `url` the way Twilio documents it, in Python: the URL, then every name and
// value sorted by name (then value), HMAC-SHA1 with the token, base64. The data goes through a
// JSON file so that no shell quoting touches it.
python_signed python_sign(const std::string& token, const std::string& url,
                          const params_t& params) {
  static int counter = 0;
  const auto path = std::filesystem::temp_directory_path() /
                    ("bellhop_tw_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("token");
    w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
    w.Key("url");
    w.String(url.data(), static_cast<rapidjson::SizeType>(url.size()));
    w.Key("params");
    w.StartArray();
    for (const auto& [n, v] : params) {
      w.StartArray();
      w.String(n.data(), static_cast<rapidjson::SizeType>(n.size()));
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
    std::ofstream f(path, std::ios::binary);
    f.write(buf.GetString(), static_cast<std::streamsize>(buf.GetSize()));
  }
  const std::string cmd =
      "/usr/bin/python3 -c '"
      "import base64, hashlib, hmac, json, sys, urllib.parse\n"
      "d = json.load(open(sys.argv[1], encoding=\"utf-8\"))\n"
      "params = [tuple(p) for p in d[\"params\"]]\n"
      "data = d[\"url\"] + \"\".join(k + v for k, v in sorted(params))\n"
      "mac = hmac.new(d[\"token\"].encode(), data.encode(), hashlib.sha1).digest()\n"
      "print(base64.b64encode(mac).decode())\n"
      "print(urllib.parse.urlencode(params))\n"
      "' '" +
      path.string() + "'";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    ::pclose(p);
  }
  std::filesystem::remove(path);
  python_signed r;
  const auto nl = out.find('\n');
  if (nl != std::string::npos) {
    r.signature = out.substr(0, nl);
    r.body = out.substr(nl + 1);
    while (!r.body.empty() && r.body.back() == '\n') r.body.pop_back();
  }
  EXPECT_EQ(r.signature.size(), 28u) << "python3 did not sign: '" << out << "'";
  return r;
}

webhook post(const std::string& target, const std::string& body, const std::string* signature,
             const std::string& content_type = form_type) {
  webhook w;
  w.method = "POST";
  w.target = target;
  if (!content_type.empty()) w.headers["content-type"] = content_type;
  if (signature != nullptr) w.headers["x-twilio-signature"] = *signature;
  w.body = body;
  return w;
}

// A webhook as Twilio would post it to `target`, signed by Python with `token`.
webhook signed_post(const std::string& target, const params_t& params,
                    const std::string& token = auth_token, const std::string& base = public_url) {
  const auto s = python_sign(token, base + target, params);
  return post(target, s.body, &s.signature);
}

// An incoming SMS as Twilio documents its parameters (messaging webhook request).
params_t sms_params(const std::string& body = "Is breakfast included?") {
  return {{"ToCountry", "US"},
          {"ToState", "CA"},
          {"SmsMessageSid", "SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f21"},
          {"NumMedia", "0"},
          {"ToCity", "SAN FRANCISCO"},
          {"FromZip", "94105"},
          {"SmsSid", "SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f21"},
          {"FromState", "CA"},
          {"SmsStatus", "received"},
          {"FromCity", "SAN FRANCISCO"},
          {"Body", body},
          {"FromCountry", "US"},
          {"To", "+15017122661"},
          {"MessagingServiceSid", "MG9752274e9e519418a7406176694466fa"},
          {"ToZip", "94105"},
          {"NumSegments", "1"},
          {"MessageSid", "SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f21"},
          {"AccountSid", account_sid},
          {"From", "+14155552671"},
          {"ApiVersion", "2010-04-01"}};
}

params_t status_params(const std::string& status, const std::string& error_code = "") {
  params_t p{{"SmsSid", "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"},
             {"SmsStatus", status},
             {"MessageStatus", status},
             {"To", "+14155552671"},
             {"MessageSid", "SMa1b2c3d4e5f60718293a4b5c6d7e8f90"},
             {"AccountSid", account_sid},
             {"From", "+15017122661"},
             {"ApiVersion", "2010-04-01"}};
  if (!error_code.empty()) p.emplace_back("ErrorCode", error_code);
  return p;
}

params_t without(params_t p, const std::string& name) {
  std::erase_if(p, [&](const auto& kv) { return kv.first == name; });
  return p;
}

params_t with(params_t p, const std::string& name, const std::string& value) {
  for (auto& [n, v] : p) {
    if (n == name) {
      v = value;
      return p;
    }
  }
  p.emplace_back(name, value);
  return p;
}

rapidjson::Document parse_json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// ---- signatures ------------------------------------------------------------------------------

// Twilio's published example ("Validating signatures from Twilio"; the same vector is the
// fixture of Twilio's helper libraries, e.g. twilio-python tests/unit/test_request_validator.py).
const std::string doc_token = "12345";
const std::string doc_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const params_t doc_params{{"CallSid", "CA1234567890ABCDE"},
                          {"Caller", "+14158675309"},
                          {"Digits", "1234"},
                          {"From", "+14158675309"},
                          {"To", "+18005551212"}};
const std::string doc_signature = "RSOYDt4T1cUTdK1PDd93/VVr8B8=";

TEST(twilio_signature, reproduces_twilios_published_example) {
  EXPECT_EQ(signature(doc_token, doc_url, doc_params), doc_signature);
  EXPECT_TRUE(signature_valid(doc_token, doc_url, doc_params, doc_signature));
}

TEST(twilio_signature, published_example_does_not_depend_on_param_order) {
  params_t reversed(doc_params.rbegin(), doc_params.rend());
  EXPECT_EQ(signature(doc_token, doc_url, reversed), doc_signature);
}

TEST(twilio_signature, repeated_names_sort_by_value_like_twilios_libraries) {
  // twilio-python test_compute_signature_duplicate_multi_dict
  const params_t p{
      {"Sid", "CA123"}, {"SidAccount", "AC123"}, {"Digits", "5678"}, {"Digits", "1234"}};
  EXPECT_EQ(signature(doc_token, doc_url, p), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
}

TEST(twilio_signature, published_example_with_explicit_default_port) {
  // twilio-python test_validation_adds_port_on_https: the same request signed with ":443".
  EXPECT_EQ(signature(doc_token, "https://mycompany.com:443/myapp.php?foo=1&bar=2", doc_params),
            "kvajT1Ptam85bY51eRf/AJRuM3w=");
}

TEST(twilio_signature, agrees_with_python) {
  const params_t p{{"Body", "Grüße aus Zimmer 12 ✓ 1+1=2 & more"},
                   {"From", "+14155552671"},
                   {"b", "2"},
                   {"B", "1"},
                   {"a", "z"},
                   {"a", "y"},
                   {"empty", ""}};
  const std::string url = public_url + sms_target + "?property=hotel-berlin&x=%20";
  const auto py = python_sign(auth_token, url, p);
  EXPECT_EQ(signature(auth_token, url, p), py.signature);
  EXPECT_TRUE(signature_valid(auth_token, url, p, py.signature));
}

TEST(twilio_signature, wrong_token_or_empty_token_is_invalid) {
  EXPECT_FALSE(signature_valid("12346", doc_url, doc_params, doc_signature));
  EXPECT_FALSE(signature_valid("", doc_url, doc_params, signature("", doc_url, doc_params)));
  EXPECT_FALSE(signature_valid(doc_token, doc_url, doc_params, ""));
}

// ---- webhook verification --------------------------------------------------------------------

TEST(twilio_webhook, published_example_passes_the_signature_check) {
  // The documented request carries no AccountSid: past the signature (401) it stops at the
  // account check (403), so a 403 here proves the signature was accepted.
  auto s = test_settings();
  s.auth_token = doc_token;
  s.public_url = "https://mycompany.com";
  const auto body = encode_form(doc_params);
  auto r = parse_status_webhook(s, post("/myapp.php?foo=1&bar=2", body, &doc_signature));
  EXPECT_EQ(r.status, 403) << r.error_message;

  auto tampered = doc_params;
  tampered[2].second = "1235";
  r = parse_status_webhook(s,
                           post("/myapp.php?foo=1&bar=2", encode_form(tampered), &doc_signature));
  EXPECT_EQ(r.status, 401);
}

TEST(twilio_webhook, accepts_the_url_with_or_without_its_port_like_twilios_libraries) {
  auto s = test_settings();
  s.auth_token = doc_token;
  const auto body = encode_form(doc_params);
  const std::string with_port = "kvajT1Ptam85bY51eRf/AJRuM3w=";  // signed for :443
  s.public_url = "https://mycompany.com";
  EXPECT_EQ(parse_status_webhook(s, post("/myapp.php?foo=1&bar=2", body, &with_port)).status, 403);
  s.public_url = "https://mycompany.com:1234";  // twilio-python: removes the port on https
  EXPECT_EQ(parse_status_webhook(s, post("/myapp.php?foo=1&bar=2", body, &doc_signature)).status,
            403);
  s.public_url = "https://mycompany.com:8443";  // but a different port is a different URL
  EXPECT_EQ(parse_status_webhook(s, post("/myapp.php?foo=1&bar=2", body, &with_port)).status, 401);
  s.public_url = "http://mycompany.com";  // and so is another scheme
  EXPECT_EQ(parse_status_webhook(s, post("/myapp.php?foo=1&bar=2", body, &doc_signature)).status,
            401);
}

TEST(twilio_webhook, python_signed_sms_is_accepted) {
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, sms_params()));
  ASSERT_EQ(r.status, 200) << r.error_code << ": " << r.error_message;
  ASSERT_EQ(r.messages.size(), 1u);
}

TEST(twilio_webhook, python_signed_sms_with_query_and_awkward_text_is_accepted) {
  const std::string text = "Zimmer 12: 2 Handtücher + 1 Kissen, bitte! 100% & =) 😀\nDanke";
  auto r = parse_sms_webhook(test_settings(),
                             signed_post(sms_target + "?property=hotel-berlin", sms_params(text)));
  ASSERT_EQ(r.status, 200) << r.error_message;
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].text, text);
}

TEST(twilio_webhook, python_signed_status_with_repeated_names_is_accepted) {
  auto p = status_params("delivered");
  p.emplace_back("Extra", "b");
  p.emplace_back("Extra", "a");  // Python sorts ("Extra","a") first: so must Bellhop
  auto r = parse_status_webhook(test_settings(), signed_post(status_target, p));
  EXPECT_EQ(r.status, 200) << r.error_message;
}

TEST(twilio_webhook, one_byte_changed_in_any_param_is_refused) {
  const auto params = sms_params();
  const auto good = python_sign(auth_token, public_url + sms_target, params);
  ASSERT_EQ(parse_sms_webhook(test_settings(), post(sms_target, good.body, &good.signature)).status,
            200);
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto value_changed = params;
    auto& v = value_changed[i].second;
    v.back() = v.back() == 'x' ? 'y' : 'x';
    EXPECT_EQ(parse_sms_webhook(test_settings(),
                                post(sms_target, encode_form(value_changed), &good.signature))
                  .status,
              401)
        << "value of " << params[i].first;
    auto name_changed = params;
    name_changed[i].first.front() ^= 0x20;  // case of the first letter
    EXPECT_EQ(parse_sms_webhook(test_settings(),
                                post(sms_target, encode_form(name_changed), &good.signature))
                  .status,
              401)
        << "name " << params[i].first;
  }
  auto dropped = params;
  dropped.pop_back();
  EXPECT_EQ(
      parse_sms_webhook(test_settings(), post(sms_target, encode_form(dropped), &good.signature))
          .status,
      401);
  auto added = params;
  added.emplace_back("Extra", "");
  EXPECT_EQ(
      parse_sms_webhook(test_settings(), post(sms_target, encode_form(added), &good.signature))
          .status,
      401);
}

TEST(twilio_webhook, one_byte_changed_in_the_url_is_refused) {
  const auto good = python_sign(auth_token, public_url + sms_target + "?p=1", sms_params());
  EXPECT_EQ(
      parse_sms_webhook(test_settings(), post(sms_target + "?p=1", good.body, &good.signature))
          .status,
      200);
  EXPECT_EQ(
      parse_sms_webhook(test_settings(), post(sms_target + "?p=2", good.body, &good.signature))
          .status,
      401);
  EXPECT_EQ(parse_sms_webhook(test_settings(), post(sms_target, good.body, &good.signature)).status,
            401);
  auto s = test_settings();
  s.public_url = "https://gw.example-hotel.co";
  EXPECT_EQ(parse_sms_webhook(s, post(sms_target + "?p=1", good.body, &good.signature)).status,
            401);
  s.public_url = "http://gw.example-hotel.com";
  EXPECT_EQ(parse_sms_webhook(s, post(sms_target + "?p=1", good.body, &good.signature)).status,
            401);
}

TEST(twilio_webhook, one_byte_changed_in_the_signature_is_refused) {
  const auto good = python_sign(auth_token, public_url + sms_target, sms_params());
  for (std::size_t i = 0; i < good.signature.size(); ++i) {
    auto sig = good.signature;
    sig[i] = sig[i] == 'A' ? 'B' : 'A';
    auto r = parse_sms_webhook(test_settings(), post(sms_target, good.body, &sig));
    EXPECT_EQ(r.status, 401) << "byte " << i;
    EXPECT_EQ(r.error_code, "invalid_signature");
  }
  const auto truncated = good.signature.substr(0, 27);
  EXPECT_EQ(parse_sms_webhook(test_settings(), post(sms_target, good.body, &truncated)).status,
            401);
  const auto longer = good.signature + "A";
  EXPECT_EQ(parse_sms_webhook(test_settings(), post(sms_target, good.body, &longer)).status, 401);
}

TEST(twilio_webhook, missing_signature_header_is_refused) {
  const auto good = python_sign(auth_token, public_url + sms_target, sms_params());
  auto r = parse_sms_webhook(test_settings(), post(sms_target, good.body, nullptr));
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.error_code, "invalid_signature");
  r = parse_status_webhook(test_settings(), post(status_target, good.body, nullptr));
  EXPECT_EQ(r.status, 401);
}

TEST(twilio_webhook, empty_auth_token_refuses_even_a_matching_signature) {
  auto s = test_settings();
  s.auth_token = "";
  auto w = signed_post(sms_target, sms_params(), "");  // a valid HMAC with an empty key
  EXPECT_EQ(parse_sms_webhook(s, w).status, 401);
  w = signed_post(status_target, status_params("delivered"), "");
  EXPECT_EQ(parse_status_webhook(s, w).status, 401);
}

TEST(twilio_webhook, empty_public_url_refuses) {
  auto s = test_settings();
  s.public_url = "";
  // Signed for the bare target, which is what public_url + target would be.
  auto w = signed_post(sms_target, sms_params(), auth_token, "");
  EXPECT_EQ(parse_sms_webhook(s, w).status, 401);
}

TEST(twilio_webhook, wrong_content_type_is_415) {
  const auto good = python_sign(auth_token, public_url + sms_target, sms_params());
  for (std::string ct : {"application/json", "text/plain", "multipart/form-data; boundary=x",
                         "application/x-www-form-urlencoded; charset=iso-8859-1",
                         "application/x-www-form-urlencodedx", ""}) {
    auto r = parse_sms_webhook(test_settings(), post(sms_target, good.body, &good.signature, ct));
    EXPECT_EQ(r.status, 415) << "'" << ct << "'";
    EXPECT_EQ(r.error_code, "unsupported_media_type");
    EXPECT_EQ(
        parse_status_webhook(test_settings(), post(sms_target, good.body, &good.signature, ct))
            .status,
        415);
  }
  for (std::string ct : {"application/x-www-form-urlencoded; charset=utf-8",
                         "Application/X-WWW-Form-URLEncoded;charset=\"UTF-8\"",
                         " application/x-www-form-urlencoded ; foo=bar"}) {
    auto r = parse_sms_webhook(test_settings(), post(sms_target, good.body, &good.signature, ct));
    EXPECT_EQ(r.status, 200) << "'" << ct << "'";
  }
}

TEST(twilio_webhook, malformed_form_is_400_before_the_signature) {
  const auto sig = std::string("RSOYDt4T1cUTdK1PDd93/VVr8B8=");
  for (std::string body : {"Body=%zz&From=%2B1", "Body=50%", "Body=%4", "Bo%y=1"}) {
    auto r = parse_sms_webhook(test_settings(), post(sms_target, body, &sig));
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(r.error_code, "malformed_form");
    EXPECT_EQ(parse_status_webhook(test_settings(), post(status_target, body, &sig)).status, 400);
  }
}

TEST(twilio_webhook, form_that_is_not_utf8_is_400) {
  auto r = parse_sms_webhook(test_settings(), post(sms_target, "Body=%C3%28&To=x", nullptr));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_code, "invalid_utf8");
  EXPECT_EQ(r.error_field, "Body");
  EXPECT_EQ(r.error_message.find('\xC3'), std::string::npos);  // the bytes are not echoed
  r = parse_sms_webhook(test_settings(), post(sms_target, "Body=%ED%A0%80", nullptr));  // surrogate
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_code, "invalid_utf8");
  r = parse_sms_webhook(test_settings(), post(sms_target, "Body=%C0%AF", nullptr));  // overlong
  EXPECT_EQ(r.status, 400);
  r = parse_sms_webhook(test_settings(), post(sms_target, "%FF=x", nullptr));  // in a name
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.error_code, "invalid_utf8");
  EXPECT_EQ(r.error_field, "");
}

TEST(twilio_webhook, wrong_or_missing_account_sid_is_403) {
  auto r = parse_sms_webhook(test_settings(),
                             signed_post(sms_target, with(sms_params(), "AccountSid",
                                                          "AC00000000000000000000000000000000")));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.error_code, "forbidden");
  r = parse_sms_webhook(test_settings(),
                        signed_post(sms_target, without(sms_params(), "AccountSid")));
  EXPECT_EQ(r.status, 403);
  r = parse_status_webhook(test_settings(),
                           signed_post(status_target, with(status_params("delivered"), "AccountSid",
                                                           "ACffffffffffffffffffffffffffffffff")));
  EXPECT_EQ(r.status, 403);
  auto s = test_settings();
  s.account_sid = "";
  EXPECT_EQ(
      parse_sms_webhook(s, signed_post(sms_target, with(sms_params(), "AccountSid", ""))).status,
      403);
}

// ---- inbound SMS -----------------------------------------------------------------------------

TEST(twilio_sms, builds_the_guest_message) {
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, sms_params()));
  ASSERT_EQ(r.status, 200) << r.error_message;
  EXPECT_TRUE(r.accepted());
  EXPECT_TRUE(r.statuses.empty());
  ASSERT_EQ(r.messages.size(), 1u);
  const auto& m = r.messages[0];
  EXPECT_EQ(m.business, "+15017122661");
  EXPECT_EQ(m.channel, "sms");
  EXPECT_EQ(m.external_id, "SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f21");
  EXPECT_EQ(m.from, "+14155552671");
  EXPECT_EQ(m.to, "+15017122661");
  EXPECT_EQ(m.text, "Is breakfast included?");
  EXPECT_EQ(m.content_type, "text");
  EXPECT_EQ(m.attachments_json, "[]");
  EXPECT_EQ(m.guest_name, "");
  EXPECT_EQ(m.metadata_json, R"({"num_segments":1})");
  EXPECT_EQ(r.reply_body, R"(<?xml version="1.0" encoding="UTF-8"?><Response></Response>)");
  EXPECT_EQ(r.reply_content_type, "text/xml");
}

TEST(twilio_sms, num_segments_only_when_given) {
  auto r = parse_sms_webhook(test_settings(),
                             signed_post(sms_target, with(sms_params(), "NumSegments", "3")));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.messages[0].metadata_json, R"({"num_segments":3})");
  r = parse_sms_webhook(test_settings(),
                        signed_post(sms_target, without(sms_params(), "NumSegments")));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.messages[0].metadata_json, "{}");
}

TEST(twilio_sms, missing_fields_are_422_naming_them) {
  for (std::string field : {"MessageSid", "From", "To"}) {
    auto r =
        parse_sms_webhook(test_settings(), signed_post(sms_target, without(sms_params(), field)));
    EXPECT_EQ(r.status, 422) << field;
    EXPECT_EQ(r.error_code, "missing_field");
    EXPECT_THAT(r.error_message, HasSubstr(field));
    r = parse_sms_webhook(test_settings(), signed_post(sms_target, with(sms_params(), field, "")));
    EXPECT_EQ(r.status, 422) << field << " empty";
    EXPECT_THAT(r.error_message, HasSubstr(field));
  }
}

TEST(twilio_sms, body_or_media_is_required) {
  auto r =
      parse_sms_webhook(test_settings(), signed_post(sms_target, without(sms_params(), "Body")));
  EXPECT_EQ(r.status, 422);
  EXPECT_EQ(r.error_code, "missing_field");
  EXPECT_THAT(r.error_message, HasSubstr("Body"));
  r = parse_sms_webhook(test_settings(), signed_post(sms_target, sms_params("")));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.error_message, HasSubstr("Body"));

  auto media_only = without(sms_params(), "Body");
  media_only = with(media_only, "NumMedia", "1");
  media_only.emplace_back("MediaUrl0",
                          "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media/ME1");
  media_only.emplace_back("MediaContentType0", "image/png");
  r = parse_sms_webhook(test_settings(), signed_post(sms_target, media_only));
  ASSERT_EQ(r.status, 200) << r.error_message;
  EXPECT_EQ(r.messages[0].text, "");
  EXPECT_EQ(r.messages[0].content_type, "image");
}

TEST(twilio_sms, media_fields_named_by_num_media_are_required) {
  auto p = with(sms_params(), "NumMedia", "2");
  p.emplace_back("MediaUrl0", "https://media.example/0");
  p.emplace_back("MediaContentType0", "image/jpeg");
  p.emplace_back("MediaContentType1", "image/jpeg");
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, p));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.error_message, HasSubstr("MediaUrl1"));
  p = without(p, "MediaContentType0");
  p.emplace_back("MediaUrl1", "https://media.example/1");
  r = parse_sms_webhook(test_settings(), signed_post(sms_target, p));
  EXPECT_EQ(r.status, 422);
  EXPECT_THAT(r.error_message, HasSubstr("MediaContentType0"));
}

TEST(twilio_sms, num_media_must_be_a_number) {
  for (std::string n : {"x", "-1", "1.5", "1000", " 1"}) {
    auto r = parse_sms_webhook(test_settings(),
                               signed_post(sms_target, with(sms_params(), "NumMedia", n)));
    EXPECT_EQ(r.status, 422) << n;
    EXPECT_EQ(r.error_code, "invalid_field") << n;
  }
}

TEST(twilio_sms, media_become_attachments) {
  auto p = with(sms_params("Photos of the stain"), "NumMedia", "5");
  const std::vector<std::pair<std::string, std::string>> media = {
      {"https://api.twilio.com/m/ME0", "image/jpeg"},
      {"https://api.twilio.com/m/ME1", "audio/ogg"},
      {"https://api.twilio.com/m/ME2", "video/mp4"},
      {"https://api.twilio.com/m/ME3", "application/pdf"},
      {"https://api.twilio.com/m/ME4", "text/vcard"}};
  for (std::size_t i = 0; i < media.size(); ++i) {
    p.emplace_back("MediaUrl" + std::to_string(i), media[i].first);
    p.emplace_back("MediaContentType" + std::to_string(i), media[i].second);
  }
  p.emplace_back("MediaUrl5", "https://api.twilio.com/m/ME5");  // beyond NumMedia: ignored
  p.emplace_back("MediaContentType5", "image/gif");
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, p));
  ASSERT_EQ(r.status, 200) << r.error_message;
  const auto& m = r.messages[0];
  EXPECT_EQ(m.text, "Photos of the stain");
  EXPECT_EQ(m.content_type, "image");
  const auto doc = parse_json(m.attachments_json);
  ASSERT_TRUE(doc.IsArray());
  ASSERT_EQ(doc.Size(), 5u);
  const char* kinds[] = {"image", "audio", "video", "document", "document"};
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& a = doc[i];
    ASSERT_TRUE(a.IsObject());
    EXPECT_EQ(a.MemberCount(), 3u);
    EXPECT_STREQ(a["type"].GetString(), kinds[i]);
    EXPECT_EQ(a["url"].GetString(), media[i].first);
    EXPECT_EQ(a["mime_type"].GetString(), media[i].second);
  }
}

TEST(twilio_sms, first_media_decides_the_content_type) {
  auto p = with(sms_params(""), "NumMedia", "2");
  p.emplace_back("MediaUrl0", "https://m/0");
  p.emplace_back("MediaContentType0", "audio/amr");
  p.emplace_back("MediaUrl1", "https://m/1");
  p.emplace_back("MediaContentType1", "image/png");
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, p));
  ASSERT_EQ(r.status, 200) << r.error_message;
  EXPECT_EQ(r.messages[0].content_type, "audio");
}

std::string opt_out_for(const params_t& p) {
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, without(p, "NumSegments")));
  EXPECT_EQ(r.status, 200) << r.error_message;
  if (r.messages.size() != 1) return "<no message>";
  const auto doc = parse_json(r.messages[0].metadata_json);
  // The typed field the gateway acts on says what the metadata tells the engine.
  const auto& typed = r.messages[0].opt_out;
  if (!doc.IsObject() || !doc.HasMember("opt_out")) {
    EXPECT_FALSE(typed.has_value()) << to_string(*typed);
    return "";
  }
  if (!doc["opt_out"].IsString()) return "<not a string>";
  EXPECT_TRUE(typed.has_value() && doc["opt_out"].GetString() == std::string(to_string(*typed)));
  return doc["opt_out"].GetString();
}

TEST(twilio_sms, default_keywords_set_opt_out) {
  for (std::string k :
       {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}) {
    EXPECT_EQ(opt_out_for(sms_params(k)), "stop") << k;
  }
  for (std::string k : {"START", "YES", "UNSTOP"})
    EXPECT_EQ(opt_out_for(sms_params(k)), "start") << k;
  for (std::string k : {"HELP", "INFO"}) EXPECT_EQ(opt_out_for(sms_params(k)), "help") << k;
}

TEST(twilio_sms, keywords_match_trimmed_in_any_case) {
  EXPECT_EQ(opt_out_for(sms_params("stop")), "stop");
  EXPECT_EQ(opt_out_for(sms_params("  Stop \n")), "stop");
  EXPECT_EQ(opt_out_for(sms_params("\tunStop")), "start");
  EXPECT_EQ(opt_out_for(sms_params("Info\r\n")), "help");
}

TEST(twilio_sms, other_texts_set_no_opt_out) {
  for (std::string t : {"STOP PLEASE", "please stop", "stopp", "STOP.", "ST OP", "yes please",
                        "helpdesk", "Can I cancel my booking?"}) {
    EXPECT_EQ(opt_out_for(sms_params(t)), "") << t;
  }
}

TEST(twilio_sms, opt_out_type_is_taken_as_given) {
  EXPECT_EQ(opt_out_for(with(sms_params("Arrêt"), "OptOutType", "STOP")), "stop");
  EXPECT_EQ(opt_out_for(with(sms_params("Reanudar"), "OptOutType", "START")), "start");
  EXPECT_EQ(opt_out_for(with(sms_params("Ayuda"), "OptOutType", "HELP")), "help");
  EXPECT_EQ(opt_out_for(with(sms_params("START"), "OptOutType", "STOP")), "stop");  // it wins
  EXPECT_EQ(opt_out_for(with(sms_params("hello"), "OptOutType", "")), "");
}

TEST(twilio_sms, opt_out_metadata_next_to_num_segments) {
  auto r = parse_sms_webhook(test_settings(), signed_post(sms_target, sms_params("STOP")));
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.messages[0].metadata_json, R"({"num_segments":1,"opt_out":"stop"})");
  EXPECT_EQ(r.messages[0].text, "STOP");
}

// ---- status callbacks ------------------------------------------------------------------------

status_update single_status(const params_t& p) {
  auto r = parse_status_webhook(test_settings(), signed_post(status_target, p));
  EXPECT_EQ(r.status, 200) << r.error_message;
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.statuses.size(), 1u);
  return r.statuses.empty() ? status_update{} : r.statuses[0];
}

TEST(twilio_status, reported_statuses_map_to_updates) {
  for (std::string st : {"sent", "delivered", "read"}) {
    const auto u = single_status(status_params(st));
    EXPECT_EQ(u.status, st);
    EXPECT_EQ(u.provider_message_id, "SMa1b2c3d4e5f60718293a4b5c6d7e8f90");
    EXPECT_EQ(u.recipient, "+14155552671");
    EXPECT_EQ(u.error_code, "");
    EXPECT_EQ(u.error_reason, "");
  }
}

TEST(twilio_status, undelivered_and_failed_are_failed_with_the_reason) {
  const std::vector<std::pair<std::string, std::string>> codes = {
      {"30003", "unreachable"}, {"30004", "blocked"},          {"30005", "unknown destination"},
      {"30006", "landline"},    {"30007", "carrier filtered"}, {"21610", "unsubscribed"}};
  for (std::string st : {"undelivered", "failed"}) {
    for (const auto& [code, words] : codes) {
      const auto u = single_status(status_params(st, code));
      EXPECT_EQ(u.status, "failed") << st;
      EXPECT_EQ(u.error_code, code);
      EXPECT_THAT(u.error_reason, HasSubstr(words)) << code;
      EXPECT_EQ(u.recipient, "+14155552671");
    }
  }
  auto u = single_status(status_params("undelivered", "12345"));
  EXPECT_EQ(u.error_code, "12345");
  EXPECT_EQ(u.error_reason, "error 12345");
  u = single_status(status_params("failed"));
  EXPECT_EQ(u.status, "failed");
  EXPECT_EQ(u.error_code, "");
  EXPECT_EQ(u.error_reason, "failed");
}

TEST(twilio_status, error_code_is_ignored_when_not_failed) {
  const auto u = single_status(status_params("delivered", "30003"));
  EXPECT_EQ(u.status, "delivered");
  EXPECT_EQ(u.error_code, "");
}

TEST(twilio_status, intermediate_statuses_are_accepted_without_update) {
  for (std::string st :
       {"queued", "accepted", "sending", "scheduled", "canceled", "receiving", "received"}) {
    auto r = parse_status_webhook(test_settings(), signed_post(status_target, status_params(st)));
    EXPECT_EQ(r.status, 200) << st;
    EXPECT_TRUE(r.statuses.empty()) << st;
    EXPECT_TRUE(r.messages.empty()) << st;
  }
}

TEST(twilio_status, message_sid_and_status_are_required) {
  for (std::string field : {"MessageSid", "MessageStatus"}) {
    auto r = parse_status_webhook(
        test_settings(), signed_post(status_target, without(status_params("sent"), field)));
    EXPECT_EQ(r.status, 422) << field;
    EXPECT_EQ(r.error_code, "missing_field");
    EXPECT_THAT(r.error_message, HasSubstr(field));
  }
}

TEST(twilio_status, status_signed_for_the_sms_url_is_refused) {
  const auto good = python_sign(auth_token, public_url + sms_target, status_params("delivered"));
  EXPECT_EQ(
      parse_status_webhook(test_settings(), post(status_target, good.body, &good.signature)).status,
      401);
}

// ---- send ------------------------------------------------------------------------------------

outbound_message reply(
    const std::string& text = "Breakfast is served 7:00–10:30 & costs €15 + tax.") {
  outbound_message m;
  m.id = "01J8ZB3ZQ6K8Y1T7V2X3W4R5S6";
  m.property_id = "hotel-berlin";
  m.channel = "sms";
  m.to = "+14155552671";
  m.text = text;
  return m;
}

std::string header_of(const http_call& c, const std::string& name) {
  std::string value;
  int found = 0;
  for (const auto& [n, v] : c.headers) {
    if (n == name) {
      value = v;
      ++found;
    }
  }
  EXPECT_EQ(found, 1) << name;
  return value;
}

form_fields body_of(const http_call& c) {
  auto f = parse_form(c.body);
  EXPECT_TRUE(f.has_value()) << c.body;
  return f ? *f : form_fields{};
}

TEST(twilio_send, request_url_headers_and_body) {
  const auto c = send_request(test_settings(), reply());
  EXPECT_EQ(c.method, "POST");
  EXPECT_EQ(c.url, "https://api.twilio.com/2010-04-01/Accounts/" + account_sid + "/Messages.json");
  EXPECT_EQ(c.headers.size(), 2u);
  EXPECT_EQ(header_of(c, "Content-Type"), "application/x-www-form-urlencoded");
  EXPECT_EQ(body_of(c), (form_fields{{"To", "+14155552671"},
                                     {"From", "+15017122661"},
                                     {"Body", "Breakfast is served 7:00–10:30 & costs €15 + tax."},
                                     {"StatusCallback", public_url + status_target}}));
  // Everything but the unreserved characters is escaped: a space is %20, never '+'.
  EXPECT_THAT(c.body, HasSubstr("To=%2B14155552671&From=%2B15017122661&Body=Breakfast%20is%20"));
  EXPECT_THAT(c.body, HasSubstr("%26%20costs%20%E2%82%AC15%20%2B%20tax."));
}

TEST(twilio_send, basic_auth_is_sid_and_token) {
  // RFC 7617's example credentials, so the expected value is independent of Bellhop.
  auto s = test_settings();
  s.account_sid = "Aladdin";
  s.auth_token = "open sesame";
  const auto c = send_request(s, reply());
  EXPECT_EQ(header_of(c, "Authorization"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(c.url, "https://api.twilio.com/2010-04-01/Accounts/Aladdin/Messages.json");

  const auto d = send_request(test_settings(), reply());
  EXPECT_EQ(header_of(d, "Authorization"),
            "Basic "
            "QUMzZjlkMWMwYTZiMmU0ZjhhOWM3ZDVlM2IxYTBmMmM0ZDo5YzhiN2E2ZjVlNGQzYzJiMWEwZjllOGQ3YzZiNW"
            "E0Zg==");
}

TEST(twilio_send, base_url_with_trailing_slash) {
  auto s = test_settings();
  s.api_base_url = "http://127.0.0.1:8089/";
  EXPECT_EQ(send_request(s, reply()).url,
            "http://127.0.0.1:8089/2010-04-01/Accounts/" + account_sid + "/Messages.json");
}

TEST(twilio_send, attachments_with_url_become_media_urls) {
  auto m = reply("Your invoice and a map");
  m.attachments_json =
      R"([{"type":"document","url":"https://files.example/inv.pdf?a=1&b=2"},{"type":"image","id":"123"},)"
      R"({"type":"image","url":"https://files.example/map.png"},"junk",{"url":""}])";
  const auto f = body_of(send_request(test_settings(), m));
  EXPECT_EQ(f, (form_fields{{"To", "+14155552671"},
                            {"From", "+15017122661"},
                            {"Body", "Your invoice and a map"},
                            {"MediaUrl", "https://files.example/inv.pdf?a=1&b=2"},
                            {"MediaUrl", "https://files.example/map.png"},
                            {"StatusCallback", public_url + status_target}}));
}

TEST(twilio_send, media_without_text_leaves_body_out) {
  auto m = reply("");
  m.attachments_json = R"([{"type":"image","url":"https://files.example/map.png"}])";
  const auto f = body_of(send_request(test_settings(), m));
  EXPECT_EQ(form_value(f, "Body"), nullptr);
  ASSERT_NE(form_value(f, "MediaUrl"), nullptr);
}

TEST(twilio_send, broken_attachments_json_sends_the_text) {
  auto m = reply("hi");
  m.attachments_json = "[{\"url\":";
  EXPECT_EQ(body_of(send_request(test_settings(), m)),
            (form_fields{{"To", "+14155552671"},
                         {"From", "+15017122661"},
                         {"Body", "hi"},
                         {"StatusCallback", public_url + status_target}}));
}

TEST(twilio_send, extras_from_overrides_the_sender) {
  auto m = reply("hi");
  m.extras["from"] = "+15005550006";
  const auto f = body_of(send_request(test_settings(), m));
  ASSERT_NE(form_value(f, "From"), nullptr);
  EXPECT_EQ(*form_value(f, "From"), "+15005550006");
}

TEST(twilio_send, messaging_service_sender) {
  auto s = test_settings();
  s.from = "MG9752274e9e519418a7406176694466fa";
  const auto f = body_of(send_request(s, reply("hi")));
  EXPECT_EQ(form_value(f, "From"), nullptr);
  ASSERT_NE(form_value(f, "MessagingServiceSid"), nullptr);
  EXPECT_EQ(*form_value(f, "MessagingServiceSid"), s.from);
}

TEST(twilio_send, no_status_callback_without_public_url) {
  auto s = test_settings();
  s.public_url = "";
  const auto f = body_of(send_request(s, reply("hi")));
  EXPECT_EQ(form_value(f, "StatusCallback"), nullptr);
  EXPECT_EQ(f.size(), 3u);
}

// ---- send answers ----------------------------------------------------------------------------

const std::map<std::string, std::string> no_headers;

std::string twilio_error(int code, const std::string& message, int status) {
  return R"({"code":)" + std::to_string(code) + R"(,"message":")" + message +
         R"(","more_info":"https://www.twilio.com/docs/errors/)" + std::to_string(code) +
         R"(","status":)" + std::to_string(status) + "}";
}

TEST(twilio_answer, created_with_sid_is_sent) {
  const std::string body =
      R"({"account_sid":"AC3f9d","api_version":"2010-04-01","body":"hi","date_created":"Thu, 24 Aug 2023 05:01:45 +0000","direction":"outbound-api","error_code":null,"error_message":null,"from":"+15017122661","num_media":"0","num_segments":"1","price":null,"sid":"SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f22","status":"queued","to":"+14155552671"})";
  const auto r = interpret_send(201, body, no_headers);
  EXPECT_EQ(r.outcome, send_outcome::sent);
  EXPECT_EQ(r.provider_message_id, "SM1f0e8c3a9d2b4c6e8f0a1b3c5d7e9f22");
  EXPECT_EQ(r.error_code, "");
}

TEST(twilio_answer, success_without_sid_is_transient) {
  for (std::string body :
       {R"({"status":"queued"})", R"({"sid":""})", R"({"sid":5})", "not json", "", "[]"}) {
    const auto r = interpret_send(200, body, no_headers);
    EXPECT_EQ(r.outcome, send_outcome::transient) << body;
    EXPECT_EQ(r.provider_message_id, "");
  }
}

TEST(twilio_answer, throttling_is_rate_limited) {
  const auto body = twilio_error(20429, "Too Many Requests", 429);
  auto r = interpret_send(429, body, {{"retry-after", "7"}});
  EXPECT_EQ(r.outcome, send_outcome::rate_limited);
  EXPECT_EQ(r.error_code, "20429");
  EXPECT_EQ(r.retry_after, 7s);
  r = interpret_send(429, body, no_headers);
  EXPECT_EQ(r.outcome, send_outcome::rate_limited);
  EXPECT_EQ(r.retry_after, 1s);
  r = interpret_send(400, body, no_headers);  // the code alone says it
  EXPECT_EQ(r.outcome, send_outcome::rate_limited);
  r = interpret_send(429, "<html>slow down</html>", {{"retry-after", "2"}});  // HTTP 429 alone
  EXPECT_EQ(r.outcome, send_outcome::rate_limited);
  EXPECT_EQ(r.retry_after, 2s);
  for (std::string bad : {"abc", "0", "-3", "Wed, 21 Oct 2015 07:28:00 GMT", ""}) {
    r = interpret_send(429, body, {{"retry-after", bad}});
    EXPECT_EQ(r.retry_after, 1s) << "'" << bad << "'";
  }
  r = interpret_send(429, body, {{"retry-after", "86400"}});
  EXPECT_EQ(r.retry_after, 3600s);
}

TEST(twilio_answer, stop_is_opted_out) {
  const auto r = interpret_send(
      400, twilio_error(21610, "Attempt to send to unsubscribed recipient", 400), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::opted_out);
  EXPECT_EQ(r.error_code, "21610");
  EXPECT_THAT(r.reason, HasSubstr("STOP"));
}

TEST(twilio_answer, bad_recipients_are_permanent) {
  for (int code : {21211, 21614, 21612, 21408, 21606, 21617}) {
    const auto r = interpret_send(
        400, twilio_error(code, "The 'To' number +1555 is not valid.", 400), no_headers);
    EXPECT_EQ(r.outcome, send_outcome::permanent) << code;
    EXPECT_EQ(r.error_code, std::to_string(code));
    EXPECT_THAT(r.reason, HasSubstr("The 'To' number +1555 is not valid."));
  }
}

TEST(twilio_answer, other_client_errors_are_permanent) {
  auto r = interpret_send(401, twilio_error(20003, "Authenticate", 401), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::permanent);
  EXPECT_EQ(r.error_code, "20003");
  EXPECT_THAT(r.reason, HasSubstr("Authenticate"));
  r = interpret_send(400, twilio_error(21999, "Something new", 400), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::permanent);
  EXPECT_EQ(r.error_code, "21999");
  EXPECT_THAT(r.reason, HasSubstr("Something new"));
  r = interpret_send(404, R"({"code":"20404","message":"The requested resource was not found"})",
                     no_headers);  // a code sent as a string
  EXPECT_EQ(r.outcome, send_outcome::permanent);
  EXPECT_EQ(r.error_code, "20404");
}

TEST(twilio_answer, server_errors_and_garbage_are_transient) {
  auto r = interpret_send(500, twilio_error(20500, "Internal Server Error", 500), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
  EXPECT_EQ(r.error_code, "20500");
  r = interpret_send(503, "<html>Service Unavailable</html>", no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
  EXPECT_THAT(r.reason, HasSubstr("503"));
  r = interpret_send(400, "<html>Bad Request</html>", no_headers);  // not Twilio talking
  EXPECT_EQ(r.outcome, send_outcome::transient);
  r = interpret_send(408, twilio_error(0, "timeout", 408), no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
  r = interpret_send(0, "", no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
  r = interpret_send(302, "", no_headers);
  EXPECT_EQ(r.outcome, send_outcome::transient);
}

TEST(twilio_answer, deeply_nested_body_does_not_crash) {
  const std::string deep(200000, '[');
  EXPECT_EQ(interpret_send(200, deep, no_headers).outcome, send_outcome::transient);
  EXPECT_EQ(interpret_send(400, deep, no_headers).outcome, send_outcome::transient);
}

TEST(twilio_errors, description_table) {
  EXPECT_THAT(error_description("30003"), HasSubstr("unreachable"));
  EXPECT_THAT(error_description("30007"), HasSubstr("carrier"));
  EXPECT_EQ(error_description("99999"), "error 99999");
}

}  // namespace
}  // namespace bellhop::channels::twilio
