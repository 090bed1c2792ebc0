#include "bellhop/channels/twilio.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>

#include "bellhop/channels/form.hpp"
#include "bellhop/contract/encoding.hpp"
#include "bellhop/contract/secrets.hpp"
#include "bellhop/json/utf8.hpp"
#include "bellhop/json/write.hpp"
#include "json_webhook.hpp"
#include "text.hpp"

namespace bellhop::channels::twilio {
namespace {

using detail::all_digits;
using detail::iequals;
using detail::lower;
using detail::retry_after_header;
using detail::trim;

using json_writer = json::writer;
using params_t = std::vector<std::pair<std::string, std::string>>;

constexpr std::string_view empty_twiml =
    R"(<?xml version="1.0" encoding="UTF-8"?><Response></Response>)";
constexpr std::string_view status_path = "/v1/webhooks/twilio/status";

// ---- text ------------------------------------------------------------------------------------




std::string lowered(std::string_view v) {
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  return out;
}


bool starts_with_i(std::string_view v, std::string_view prefix) {
  return v.size() >= prefix.size() && iequals(v.substr(0, prefix.size()), prefix);
}


// A small non-negative decimal ("3"), nullopt for anything else.
std::optional<int> small_number(std::string_view v, std::size_t max_digits) {
  if (!all_digits(v) || v.size() > max_digits) return std::nullopt;
  int n = 0;
  std::from_chars(v.data(), v.data() + v.size(), n);
  return n;
}


// ---- crypto ----------------------------------------------------------------------------------

const unsigned char* bytes(std::string_view v) {
  static const unsigned char empty = 0;
  return v.empty() ? &empty : reinterpret_cast<const unsigned char*>(v.data());
}

// ---- webhook checks --------------------------------------------------------------------------

// application/x-www-form-urlencoded, optionally with parameters; a charset must be UTF-8.
bool is_form_content_type(std::string_view value) {
  auto semi = value.find(';');
  if (!iequals(trim(value.substr(0, semi)), "application/x-www-form-urlencoded")) return false;
  while (semi != std::string_view::npos) {
    value.remove_prefix(semi + 1);
    semi = value.find(';');
    const auto param = trim(value.substr(0, semi));
    const auto eq = param.find('=');
    if (eq == std::string_view::npos || !iequals(trim(param.substr(0, eq)), "charset")) continue;
    auto charset = trim(param.substr(eq + 1));
    if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"') {
      charset = charset.substr(1, charset.size() - 2);
    }
    if (!iequals(charset, "utf-8")) return false;
  }
  return true;
}

// The URLs Twilio may have signed for this request: public_url + target, and the same with the
// default port added (or the given port removed). Twilio's helper libraries accept both forms
// "since sig generation on back end is inconsistent" (twilio-python request_validator.py).
std::vector<std::string> signed_urls(std::string_view public_url, std::string_view target) {
  std::vector<std::string> urls{std::string(public_url) + std::string(target)};
  auto parsed = boost::urls::parse_absolute_uri(public_url);
  if (!parsed || !parsed->has_authority()) return urls;
  boost::urls::url u(*parsed);
  if (u.has_port()) {
    u.remove_port();
  } else if (iequals(u.scheme(), "https")) {
    u.set_port_number(443);
  } else if (iequals(u.scheme(), "http")) {
    u.set_port_number(80);
  } else {
    return urls;
  }
  urls.push_back(std::string(u.buffer()) + std::string(target));
  return urls;
}

webhook_result missing(std::string_view field) {
  return webhook_result::refuse(422, "missing_field", std::string(field) + " is required");
}

// Content type, form, signature and account: what both webhooks check before their fields.
// Returns the refusal, or nothing with `fields` filled.
std::optional<webhook_result> verify(const settings& s, const webhook& w, form_fields& fields) {
  const auto* content_type = w.header("content-type");
  if (content_type == nullptr || !is_form_content_type(*content_type)) {
    return webhook_result::refuse(415, "unsupported_media_type",
                                  "Content-Type must be application/x-www-form-urlencoded");
  }
  auto parsed = parse_form(w.body);
  if (!parsed) return webhook_result::refuse(400, "malformed_form", parsed.error().message);
  for (const auto& [name, value] : *parsed) {
    if (!json::is_valid_utf8(name) || !json::is_valid_utf8(value)) {
      // The field is named when its name is a short valid one; the bytes are never echoed.
      const bool nameable = json::is_valid_utf8(name) && !name.empty() && name.size() <= 64;
      auto r = webhook_result::refuse(400, "invalid_utf8",
                                      nameable ? "form field " + name + " is not valid UTF-8"
                                               : "a form field is not valid UTF-8");
      if (nameable) r.error_field = name;
      return r;
    }
  }
  const auto* given = w.header("x-twilio-signature");
  bool valid = false;
  if (given != nullptr && !s.public_url.empty()) {
    for (const auto& url : signed_urls(s.public_url, w.target)) {
      valid = signature_valid(s.auth_token, url, *parsed, *given) || valid;
    }
  }
  if (!valid) {
    return webhook_result::refuse(401, "invalid_signature",
                                  "X-Twilio-Signature is missing or does not match the request");
  }
  const auto* account = form_value(*parsed, "AccountSid");
  if (s.account_sid.empty() || account == nullptr || *account != s.account_sid) {
    return webhook_result::refuse(403, "forbidden", "AccountSid is not this gateway's account");
  }
  fields = std::move(*parsed);
  return std::nullopt;
}

// The field's value, nullptr when absent or empty.
const std::string* nonempty(const form_fields& f, std::string_view name) {
  const auto* v = form_value(f, name);
  return v == nullptr || v->empty() ? nullptr : v;
}

// ---- inbound message -------------------------------------------------------------------------

std::string_view media_kind(std::string_view mime) {
  if (starts_with_i(mime, "image/")) return "image";
  if (starts_with_i(mime, "audio/")) return "audio";
  if (starts_with_i(mime, "video/")) return "video";
  return "document";
}

// Twilio's default keywords (Advanced Opt-Out tutorial; help.twilio.com article 223134027),
// matched like Twilio does: the whole message, one word, any case.
std::optional<opt_out_action> keyword_opt_out(std::string_view body) {
  static constexpr std::array<std::string_view, 8> stop = {
      "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"};
  static constexpr std::array<std::string_view, 3> start = {"START", "YES", "UNSTOP"};
  static constexpr std::array<std::string_view, 2> help = {"HELP", "INFO"};
  const auto word = trim(body);
  auto in = [word](const auto& list) {
    return std::any_of(list.begin(), list.end(),
                       [word](std::string_view k) { return iequals(word, k); });
  };
  if (in(stop)) return opt_out_action::stop;
  if (in(start)) return opt_out_action::start;
  if (in(help)) return opt_out_action::help;
  return std::nullopt;
}

// OptOutType (sent when Advanced Opt-Out recognised a keyword, custom ones included) or else
// the default keywords; none when neither says anything.
std::optional<opt_out_action> opt_out_of(const form_fields& f, std::string_view body) {
  if (const auto* type = nonempty(f, "OptOutType")) {
    for (auto k : {opt_out_action::stop, opt_out_action::start, opt_out_action::help}) {
      if (iequals(*type, to_string(k))) return k;
    }
  }
  return keyword_opt_out(body);
}

using json::put;

// ---- send answer -----------------------------------------------------------------------------

struct known_error {
  std::string_view code;
  std::string_view words;
  bool permanent;  // a send that got this answer can never succeed as it is
};

// Common codes of the Messages API and of status callbacks (twilio.com/docs/api/errors/<code>).
constexpr std::array<known_error, 24> known_errors = {{
    {"20003", "authentication failed", true},
    {"20404", "resource not found", true},
    {"20429", "too many requests", false},
    {"21211", "invalid 'To' phone number", true},
    {"21408", "permission to send to this region is not enabled", true},
    {"21602", "message body is required", true},
    {"21606", "the 'From' number cannot send SMS", true},
    {"21608", "trial accounts can only send to verified numbers", true},
    {"21610", "unsubscribed recipient (replied STOP)", true},
    {"21612", "the 'To' number is not reachable by SMS", true},
    {"21614", "the 'To' number is not a mobile number", true},
    {"21617", "message body exceeds 1600 characters", true},
    {"21703", "the messaging service has no sender", true},
    {"30001", "queue overflow", false},
    {"30002", "account suspended", false},
    {"30003", "unreachable destination handset", false},
    {"30004", "message blocked", false},
    {"30005", "unknown destination handset", false},
    {"30006", "landline or unreachable carrier", false},
    {"30007", "carrier filtered the message", false},
    {"30008", "unknown error", false},
    {"30032", "toll-free number not verified", false},
    {"30034", "US A2P 10DLC: message from an unregistered number", false},
    {"30044", "message expired (validity period)", false},
}};

const known_error* find_error(std::string_view code) {
  for (const auto& e : known_errors) {
    if (e.code == code) return &e;
  }
  return nullptr;
}

const rapidjson::Value* member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

std::string_view text_member(const rapidjson::Value& v, const char* name) {
  const auto* m = member(v, name);
  return m != nullptr && m->IsString() ? std::string_view(m->GetString(), m->GetStringLength())
                                       : std::string_view();
}

// Untrusted JSON (Twilio's replies, attachments read back from Redis): bounded like all of it.
bool parse_json(std::string_view text, rapidjson::Document& doc) {
  return static_cast<bool>(json::parse(text, doc, detail::body_limits(32)));
}

// Twilio's error body: {"code":21211,"message":"…","more_info":"…","status":400}.
struct api_error {
  std::string code;
  std::string message;
};

std::optional<api_error> read_error(std::string_view body) {
  rapidjson::Document doc;
  if (!parse_json(body, doc) || !doc.IsObject()) return std::nullopt;
  const auto* code = member(doc, "code");
  api_error e;
  if (code != nullptr && code->IsUint64()) {
    e.code = std::to_string(code->GetUint64());
  } else if (code != nullptr && code->IsString() && all_digits(code->GetString())) {
    e.code = code->GetString();
  }
  e.message = text_member(doc, "message");
  if (e.code.empty() && e.message.empty()) return std::nullopt;
  return e;
}


send_result verdict(send_outcome o, std::string code, std::string reason) {
  send_result r;
  r.outcome = o;
  r.error_code = std::move(code);
  r.reason = std::move(reason);
  return r;
}

// "the provider's message (Twilio 21211)", falling back on Bellhop's words for the code.
std::string describe(const api_error& e, int http_status) {
  std::string words = e.message;
  if (words.empty() && !e.code.empty()) words = error_description(e.code);
  if (words.empty()) words = "HTTP " + std::to_string(http_status);
  return e.code.empty() ? words : words + " (Twilio " + e.code + ")";
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------

std::string signature(std::string_view auth_token, std::string_view full_url, params_t params) {
  std::sort(params.begin(), params.end());
  std::string data(full_url);
  for (const auto& [name, value] : params) {
    data += name;
    data += value;
  }
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (auth_token.size() > static_cast<std::size_t>(INT_MAX) ||
      HMAC(EVP_sha1(), bytes(auth_token), static_cast<int>(auth_token.size()), bytes(data),
           data.size(), mac, &len) == nullptr) {
    return "";
  }
  return contract::to_base64({reinterpret_cast<const char*>(mac), len});
}

bool signature_valid(std::string_view auth_token, std::string_view full_url, const params_t& params,
                     std::string_view header_value) {
  if (auth_token.empty()) return false;
  const auto expected = signature(auth_token, full_url, params);
  const auto given = trim(header_value);
  // The length of a SHA-1 signature (28) is no secret; only the content is compared in
  // constant time.
  return !expected.empty() && contract::constant_time_equal(given, expected);
}

webhook_result parse_sms_webhook(const settings& s, const webhook& w) {
  form_fields f;
  if (auto refused = verify(s, w, f)) return std::move(*refused);

  const auto* sid = nonempty(f, "MessageSid");
  if (sid == nullptr) return missing("MessageSid");
  const auto* from = nonempty(f, "From");
  if (from == nullptr) return missing("From");
  const auto* to = nonempty(f, "To");
  if (to == nullptr) return missing("To");
  int num_media = 0;
  if (const auto* n = nonempty(f, "NumMedia")) {
    const auto parsed = small_number(*n, 3);
    if (!parsed) {
      return webhook_result::refuse(422, "invalid_field", "NumMedia must be a small number");
    }
    num_media = *parsed;
  }
  const auto* body = form_value(f, "Body");
  if ((body == nullptr || body->empty()) && num_media == 0) return missing("Body");

  guest_message m;
  m.business = *to;
  m.channel = "sms";
  m.external_id = *sid;
  m.from = *from;
  m.to = *to;
  if (body != nullptr) m.text = *body;

  rapidjson::StringBuffer attachments;
  json_writer aw(attachments);
  aw.StartArray();
  for (int i = 0; i < num_media; ++i) {
    const auto url_name = "MediaUrl" + std::to_string(i);
    const auto type_name = "MediaContentType" + std::to_string(i);
    const auto* url = nonempty(f, url_name);
    if (url == nullptr) return missing(url_name);
    const auto* mime = nonempty(f, type_name);
    if (mime == nullptr) return missing(type_name);
    const auto kind = media_kind(*mime);
    if (i == 0) m.content_type = kind;
    aw.StartObject();
    put(aw, "type", kind);
    put(aw, "url", *url);
    put(aw, "mime_type", *mime);
    aw.EndObject();
  }
  aw.EndArray();
  m.attachments_json.assign(attachments.GetString(), attachments.GetSize());
  m.attachment_count = static_cast<std::size_t>(num_media);

  rapidjson::StringBuffer metadata;
  json_writer mw(metadata);
  mw.StartObject();
  if (const auto* segments = nonempty(f, "NumSegments")) {
    if (const auto n = small_number(*segments, 6)) {
      mw.Key("num_segments");
      mw.Int(*n);
    }
  }
  m.opt_out = opt_out_of(f, m.text);
  if (m.opt_out) put(mw, "opt_out", to_string(*m.opt_out));
  mw.EndObject();
  m.metadata_json.assign(metadata.GetString(), metadata.GetSize());

  webhook_result r;
  r.messages.push_back(std::move(m));
  r.reply_body = empty_twiml;
  r.reply_content_type = "text/xml";
  return r;
}

webhook_result parse_status_webhook(const settings& s, const webhook& w) {
  form_fields f;
  if (auto refused = verify(s, w, f)) return std::move(*refused);

  const auto* sid = nonempty(f, "MessageSid");
  if (sid == nullptr) return missing("MessageSid");
  const auto* status = nonempty(f, "MessageStatus");
  if (status == nullptr) return missing("MessageStatus");

  webhook_result r;
  const auto st = lowered(*status);
  status_update u;
  if (st == "sent" || st == "delivered" || st == "read") {
    u.status = st;
  } else if (st == "undelivered" || st == "failed") {
    u.status = "failed";
    if (const auto* code = nonempty(f, "ErrorCode")) {
      u.error_code = *code;
      u.error_reason = error_description(*code);
    } else {
      u.error_reason = st;
    }
  } else {
    return r;  // queued, accepted, sending, scheduled, canceled, …: nothing to report yet
  }
  u.provider_message_id = *sid;
  if (const auto* to = form_value(f, "To")) u.recipient = *to;
  r.statuses.push_back(std::move(u));
  return r;
}

std::string error_description(std::string_view code) {
  if (const auto* e = find_error(code)) return std::string(e->words);
  return "error " + std::string(code);
}

http_call send_request(const settings& s, const outbound_message& m) {
  http_call call;
  call.method = "POST";
  std::string_view base = s.api_base_url;
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  call.url =
      std::string(base) + "/2010-04-01/Accounts/" + form_encode(s.account_sid) + "/Messages.json";
  call.headers = {
      {"Authorization", "Basic " + contract::to_base64(s.account_sid + ":" + s.auth_token)},
      {"Content-Type", "application/x-www-form-urlencoded"},
  };

  std::string sender = s.from;
  if (auto it = m.extras.find("from"); it != m.extras.end() && !it->second.empty()) {
    sender = it->second;
  }
  // A messaging service SID picks the sender from its pool: Twilio takes it only as
  // MessagingServiceSid.
  const bool service = sender.size() == 34 && sender.starts_with("MG");

  std::vector<std::string> media;
  rapidjson::Document doc;
  if (parse_json(m.attachments_json, doc) && doc.IsArray()) {
    for (const auto& a : doc.GetArray()) {
      const auto url = text_member(a, "url");
      if (!url.empty()) media.emplace_back(url);
    }
  }

  form_fields form;
  form.emplace_back("To", m.to);
  form.emplace_back(service ? "MessagingServiceSid" : "From", sender);
  if (!m.text.empty() || media.empty()) form.emplace_back("Body", m.text);
  for (auto& url : media) form.emplace_back("MediaUrl", std::move(url));
  if (!s.public_url.empty())
    form.emplace_back("StatusCallback", s.public_url + std::string(status_path));
  call.body = encode_form(form);
  return call;
}

send_result interpret_send(int http_status, std::string_view body,
                           const std::map<std::string, std::string>& headers) {
  if (http_status >= 200 && http_status < 300) {
    rapidjson::Document doc;
    if (parse_json(body, doc) && doc.IsObject()) {
      if (const auto sid = text_member(doc, "sid"); !sid.empty()) {
        send_result r;
        r.outcome = send_outcome::sent;
        r.provider_message_id = sid;
        return r;
      }
    }
    return verdict(send_outcome::transient, "",
                   "HTTP " + std::to_string(http_status) + " without a message sid");
  }

  const auto error = read_error(body);
  const api_error e = error.value_or(api_error{});
  if (e.code == "20429" || http_status == 429) {
    auto r = verdict(send_outcome::rate_limited, e.code,
                     "Twilio throttled the sender: " + describe(e, http_status));
    r.retry_after = retry_after_header(headers).value_or(std::chrono::seconds(1));
    return r;
  }
  if (e.code == "21610") {
    return verdict(send_outcome::opted_out, e.code,
                   "recipient replied STOP: " + describe(e, http_status));
  }
  if (const auto* known = find_error(e.code); known != nullptr && known->permanent) {
    return verdict(send_outcome::permanent, e.code, describe(e, http_status));
  }
  if (error && http_status >= 400 && http_status < 500 && http_status != 408) {
    return verdict(send_outcome::permanent, e.code, describe(e, http_status));
  }
  return verdict(send_outcome::transient, e.code, describe(e, http_status));
}

}  // namespace bellhop::channels::twilio
