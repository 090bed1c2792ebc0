#include "bellhop/channels/whatsapp.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <boost/url/encode.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <optional>

#include "bellhop/contract/secrets.hpp"
#include "bellhop/json/write.hpp"
#include "json_webhook.hpp"
#include "text.hpp"

namespace bellhop::channels::whatsapp {
namespace {

using detail::all_digits;
using detail::iequals;
using detail::is_json_content_type;
using detail::lower;
using detail::retry_after_header;
using detail::trim;

using json_writer = json::writer;
using namespace std::chrono_literals;

// ---- text ------------------------------------------------------------------------------------





std::string digits_of(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c >= '0' && c <= '9') out.push_back(c);
  }
  return out;
}

// A WhatsApp id ("4915112345678") as E.164; anything that is not digits (a group id, a
// business-scoped user id) is kept as it came.
std::string as_e164(std::string_view wa_id) {
  if (!wa_id.empty() && wa_id.front() == '+') wa_id.remove_prefix(1);
  return all_digits(wa_id) ? "+" + std::string(wa_id) : std::string(wa_id);
}

bool is_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// A business-scoped user id (BSUID) as Meta documents it: the ISO 3166 alpha-2 country code,
// '.', up to 128 letters and digits ("US.13491208655302741918"); a parent BSUID has "ENT."
// after the country code ("US.ENT.11815799212886844830"). Kept byte for byte: Meta refuses a
// send to an altered one.
bool is_bsuid(std::string_view v) {
  if (v.size() < 4 || v[0] < 'A' || v[0] > 'Z' || v[1] < 'A' || v[1] > 'Z' || v[2] != '.')
    return false;
  v.remove_prefix(3);
  if (v.size() > 4 && v.starts_with("ENT.")) v.remove_prefix(4);
  return v.size() <= 128 && std::all_of(v.begin(), v.end(), is_alnum);
}

// The digits of an outbound "to" written as a phone number ("+49 151 1234-5678"); nullopt when
// it holds anything else, letters above all: a mistyped BSUID must not lose its letters and
// become somebody's phone number.
std::optional<std::string> phone_digits(std::string_view to) {
  to = trim(to);
  if (!to.empty() && to.front() == '+') to.remove_prefix(1);
  std::string digits;
  for (char c : to) {
    if (c >= '0' && c <= '9') {
      digits.push_back(c);
    } else if (c != ' ' && c != '-' && c != '(' && c != ')' && c != '.') {
      return std::nullopt;
    }
  }
  if (digits.empty() || digits.size() > 20) return std::nullopt;
  return digits;
}

std::string format_number(double d) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return ec == std::errc() ? std::string(buf, end) : std::string();
}

void append_padded(std::string& out, long long value, int width) {
  std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) out.append(width - digits.size(), '0');
  out += digits;
}

// Unix seconds (WhatsApp sends them as a string) to "YYYY-MM-DDTHH:MM:SSZ"; "" if not that.
std::string rfc3339_from_unix(const rapidjson::Value* v) {
  std::uint64_t secs = 0;
  if (v == nullptr) return "";
  if (v->IsString()) {
    std::string_view s(v->GetString(), v->GetStringLength());
    if (!all_digits(s) || s.size() > 12) return "";
    std::from_chars(s.data(), s.data() + s.size(), secs);
  } else if (v->IsUint64()) {
    secs = v->GetUint64();
  } else {
    return "";
  }
  if (secs >= 253402300800ULL) return "";  // year 10000: not RFC 3339
  const std::chrono::sys_seconds tp{std::chrono::seconds{static_cast<long long>(secs)}};
  const auto day = std::chrono::floor<std::chrono::days>(tp);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss hms{tp - day};
  std::string out;
  out.reserve(20);
  append_padded(out, static_cast<int>(ymd.year()), 4);
  out += '-';
  append_padded(out, static_cast<unsigned>(ymd.month()), 2);
  out += '-';
  append_padded(out, static_cast<unsigned>(ymd.day()), 2);
  out += 'T';
  append_padded(out, hms.hours().count(), 2);
  out += ':';
  append_padded(out, hms.minutes().count(), 2);
  out += ':';
  append_padded(out, hms.seconds().count(), 2);
  out += 'Z';
  return out;
}

// ---- JSON ------------------------------------------------------------------------------------

// Parses untrusted JSON; false (doc unusable) when too deep, malformed or not UTF-8.
bool parse_json(std::string_view text, rapidjson::Document& doc) {
  return static_cast<bool>(json::parse(text, doc, detail::body_limits(max_json_depth)));
}

const rapidjson::Value* member(const rapidjson::Value& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}

const rapidjson::Value* member(const rapidjson::Value* v, const char* name) {
  return v == nullptr ? nullptr : member(*v, name);
}

// The member's text, "" when absent or not a string.
std::string_view text_of(const rapidjson::Value* v) {
  return v != nullptr && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                       : std::string_view();
}

std::string_view text_member(const rapidjson::Value* v, const char* name) {
  return text_of(member(v, name));
}

std::string_view text_member(const rapidjson::Value& v, const char* name) {
  return text_of(member(v, name));
}

// A Graph error code: a number, or digits in a string (some relays send it so).
std::string code_of(const rapidjson::Value* v) {
  if (v == nullptr) return "";
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  if (v->IsUint64()) return std::to_string(v->GetUint64());
  if (v->IsString() && all_digits(text_of(v))) return std::string(text_of(v));
  return "";
}

using json::put;

// Writes key: value only when the member is a string in the payload.
void copy_string(json_writer& w, const rapidjson::Value* from, const char* name,
                 const char* key = nullptr) {
  const auto* v = member(from, name);
  if (v != nullptr && v->IsString()) put(w, key ? key : name, text_of(v));
}

std::string written(const rapidjson::StringBuffer& b) {
  return {b.GetString(), b.GetSize()};
}

// ---- webhook: messages -----------------------------------------------------------------------

bool is_media_type(std::string_view t) {
  return t == "image" || t == "audio" || t == "video" || t == "document" || t == "sticker";
}

// What one change's value says about every message in it.
struct change_context {
  std::string business;  // metadata.phone_number_id
  std::string to;        // metadata.display_phone_number as E.164
  const rapidjson::Value* contacts = nullptr;
};

// The guest's entry in contacts[]: the same phone (wa_id) or the same BSUID (user_id). Meta
// leaves wa_id out (or empty) when it withholds the phone, so an empty id matches nothing.
const rapidjson::Value* contact_of(const change_context& ctx, std::string_view wa_id,
                                   std::string_view user_id) {
  if (ctx.contacts == nullptr || !ctx.contacts->IsArray()) return nullptr;
  for (const auto& c : ctx.contacts->GetArray()) {
    if ((!wa_id.empty() && text_member(c, "wa_id") == wa_id) ||
        (!user_id.empty() && text_member(c, "user_id") == user_id))
      return &c;
  }
  return nullptr;
}

// Fills content_type, text, attachments and the type's metadata members (metadata is an open
// object in `meta`).
void take_content(const rapidjson::Value& m, std::string_view type, guest_message& g,
                  json_writer& meta) {
  const std::string type_name(type);
  const auto* body = type.empty() ? nullptr : member(m, type_name.c_str());
  if (type == "text") {
    g.content_type = "text";
    g.text = text_member(body, "body");
  } else if (is_media_type(type)) {
    g.content_type = type_name;
    g.text = text_member(body, "caption");
    rapidjson::StringBuffer b;
    json_writer w(b);
    w.StartArray();
    w.StartObject();
    put(w, "type", type);
    copy_string(w, body, "id");
    copy_string(w, body, "mime_type");
    copy_string(w, body, "sha256");
    copy_string(w, body, "filename");
    for (const char* flag : {"voice", "animated"}) {
      if (const auto* f = member(body, flag); f != nullptr && f->IsBool()) {
        w.Key(flag);
        w.Bool(f->GetBool());
      }
    }
    w.EndObject();
    w.EndArray();
    g.attachments_json = written(b);
    g.attachment_count = 1;
  } else if (type == "location") {
    g.content_type = "location";
    const auto* lat = member(body, "latitude");
    const auto* lon = member(body, "longitude");
    const auto name = text_member(body, "name");
    const auto address = text_member(body, "address");
    const bool has_position =
        lat != nullptr && lat->IsNumber() && lon != nullptr && lon->IsNumber();
    g.text = "Location";
    if (has_position) {
      g.text += ": " + format_number(lat->GetDouble()) + ", " + format_number(lon->GetDouble());
    }
    if (!name.empty() || !address.empty()) {
      g.text += " (" + std::string(name.empty() ? address : name) + ")";
    }
    meta.Key("location");
    meta.StartObject();
    if (has_position) {
      meta.Key("latitude");
      meta.Double(lat->GetDouble());
      meta.Key("longitude");
      meta.Double(lon->GetDouble());
    }
    copy_string(meta, body, "name");
    copy_string(meta, body, "address");
    meta.EndObject();
  } else if (type == "interactive") {
    g.content_type = "interactive";
    const auto kind = text_member(body, "type");
    const auto* reply = kind == "button_reply" || kind == "list_reply"
                            ? member(body, std::string(kind).c_str())
                            : nullptr;
    g.text = text_member(reply, "title");
    meta.Key("interactive");
    meta.StartObject();
    put(meta, "type", kind);
    copy_string(meta, reply, "id");
    meta.EndObject();
  } else if (type == "button") {
    // A quick-reply button of a template message.
    g.content_type = "button";
    g.text = text_member(body, "text");
    meta.Key("button");
    meta.StartObject();
    copy_string(meta, body, "payload");
    meta.EndObject();
  } else if (type == "reaction") {
    g.content_type = "reaction";
    g.text = text_member(body, "emoji");  // absent when the guest removed the reaction
    copy_string(meta, body, "message_id");
  } else {
    g.content_type = "unsupported";
    g.text.clear();
    put(meta, "whatsapp_type", type);
  }
}

// "" when taken, else why the post is refused.
std::string take_message(const rapidjson::Value& m, const change_context& ctx,
                         const std::string& where, webhook_result& out) {
  if (!m.IsObject()) return where + " is not an object";
  const auto id = text_member(m, "id");
  auto from = text_member(m, "from");
  const auto user_id = text_member(m, "from_user_id");
  if (id.empty()) return where + ".id is missing";
  if (!from.empty()) {
    if (from.front() == '+') from.remove_prefix(1);
    if (!all_digits(from) || from.size() > 20) return where + ".from is not a WhatsApp phone id";
  } else if (user_id.empty()) {
    return where + ".from and .from_user_id are missing";
  } else if (!is_bsuid(user_id)) {
    // Without a phone the BSUID is the guest's address (conversation key, reply target).
    return where + ".from_user_id is not a WhatsApp business-scoped user id";
  }
  // Next to a phone a malformed BSUID is left out rather than costing the message.
  const auto bsuid = is_bsuid(user_id) ? user_id : std::string_view();
  const auto* contact = contact_of(ctx, from, bsuid);
  auto parent = text_member(m, "from_parent_user_id");
  if (parent.empty()) parent = text_member(contact, "parent_user_id");
  const auto username = text_member(member(contact, "profile"), "username");

  guest_message g;
  g.business = ctx.business;
  g.channel = "whatsapp";
  g.external_id = id;
  // A guest who adopted a WhatsApp username may have their phone withheld: then they are
  // known by the BSUID, which Meta always sends.
  g.from = from.empty() ? std::string(bsuid) : "+" + std::string(from);
  g.to = ctx.to;
  g.guest_name = text_member(member(contact, "profile"), "name");
  g.sent_at = rfc3339_from_unix(member(m, "timestamp"));

  rapidjson::StringBuffer b;
  json_writer meta(b);
  meta.StartObject();
  take_content(m, text_member(m, "type"), g, meta);
  copy_string(meta, member(m, "context"), "id", "context_message_id");
  // What maps a phone conversation to the same guest's BSUID one.
  if (!bsuid.empty()) put(meta, "whatsapp_user_id", bsuid);
  if (is_bsuid(parent)) put(meta, "whatsapp_parent_user_id", parent);
  if (!username.empty()) put(meta, "whatsapp_username", username);
  meta.EndObject();
  g.metadata_json = written(b);
  out.messages.push_back(std::move(g));
  return "";
}

// ---- webhook: statuses -----------------------------------------------------------------------

bool is_known_status(std::string_view s) {
  return s == "sent" || s == "delivered" || s == "read" || s == "failed";
}

// "title: details", whichever of them (or message) is there.
std::string error_reason(const rapidjson::Value* error) {
  std::string reason(text_member(error, "title"));
  if (reason.empty()) reason = text_member(error, "message");
  const auto details = text_member(member(error, "error_data"), "details");
  if (details.empty() || details == reason) return reason;
  return reason.empty() ? std::string(details) : reason + ": " + std::string(details);
}

std::string take_status(const rapidjson::Value& st, const change_context& ctx,
                        const std::string& where, webhook_result& out) {
  if (!st.IsObject()) return where + " is not an object";
  const auto id = text_member(st, "id");
  const auto status = text_member(st, "status");
  if (id.empty()) return where + ".id is missing";
  if (status.empty()) return where + ".status is missing";
  if (!is_known_status(status)) return "";  // e.g. "deleted", "warning": nothing to move

  status_update u;
  u.business = ctx.business;
  u.provider_message_id = id;
  u.status = status;
  // Sent to a BSUID and the phone withheld: no recipient_id, recipient_user_id says who.
  const auto recipient_id = text_member(st, "recipient_id");
  const auto recipient_user_id = text_member(st, "recipient_user_id");
  if (!recipient_id.empty()) {
    u.recipient = as_e164(recipient_id);
  } else if (is_bsuid(recipient_user_id)) {
    u.recipient = recipient_user_id;
  }
  u.timestamp = rfc3339_from_unix(member(st, "timestamp"));
  if (status == "failed") {
    const auto* errors = member(st, "errors");
    if (errors != nullptr && errors->IsArray() && !errors->Empty() && (*errors)[0].IsObject()) {
      const auto& e = (*errors)[0];
      u.error_code = code_of(member(e, "code"));
      // Meta mostly reports a closed customer-service window here, after accepting the send.
      u.error_reason = u.error_code == "131047" ? "outside_service_window" : error_reason(&e);
    }
  }
  out.statuses.push_back(std::move(u));
  return "";
}

// ---- webhook: the envelope -------------------------------------------------------------------

std::string take_change(const rapidjson::Value& change, const std::string& where,
                        webhook_result& out) {
  if (!change.IsObject()) return where + " is not an object";
  if (text_member(change, "field") != "messages") return "";  // another subscribed field
  const auto* value = member(change, "value");
  if (value == nullptr || !value->IsObject()) return where + ".value is missing";

  const auto* messages = member(value, "messages");
  const auto* statuses = member(value, "statuses");
  if (messages != nullptr && !messages->IsArray()) return where + ".value.messages is not an array";
  if (statuses != nullptr && !statuses->IsArray()) return where + ".value.statuses is not an array";
  const bool any =
      (messages != nullptr && !messages->Empty()) || (statuses != nullptr && !statuses->Empty());
  if (!any) return "";

  change_context ctx;
  const auto* metadata = member(value, "metadata");
  ctx.business = text_member(metadata, "phone_number_id");
  if (ctx.business.empty()) return where + ".value.metadata.phone_number_id is missing";
  if (auto digits = digits_of(text_member(metadata, "display_phone_number")); !digits.empty()) {
    ctx.to = "+" + digits;
  }
  ctx.contacts = member(value, "contacts");

  if (messages != nullptr) {
    for (rapidjson::SizeType i = 0; i < messages->Size(); ++i) {
      auto why = take_message((*messages)[i], ctx,
                              where + ".value.messages[" + std::to_string(i) + "]", out);
      if (!why.empty()) return why;
    }
  }
  if (statuses != nullptr) {
    for (rapidjson::SizeType i = 0; i < statuses->Size(); ++i) {
      auto why = take_status((*statuses)[i], ctx,
                             where + ".value.statuses[" + std::to_string(i) + "]", out);
      if (!why.empty()) return why;
    }
  }
  return "";
}

// application/json, with parameters; a charset other than UTF-8 is refused (RFC 8259 JSON is
// UTF-8 and the body is validated as such).
// ---- send ------------------------------------------------------------------------------------

struct media_choice {
  std::string type, id, link, filename;
  std::size_t index = 0;  // in attachments_json
};

bool is_sendable_media(std::string_view t) {
  return t == "image" || t == "audio" || t == "video" || t == "document";
}

bool has_caption(std::string_view t) {
  return t == "image" || t == "video" || t == "document";
}

std::optional<media_choice> pick_media(std::string_view attachments_json) {
  rapidjson::Document doc;
  if (!parse_json(attachments_json, doc) || !doc.IsArray()) return std::nullopt;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& a = doc[i];
    const auto type = text_member(a, "type");
    if (!is_sendable_media(type)) continue;
    media_choice c;
    c.index = i;
    c.type = type;
    c.id = text_member(a, "id");
    if (c.id.empty()) c.link = text_member(a, "url");
    if (c.id.empty() && c.link.empty()) continue;
    c.filename = text_member(a, "filename");
    return c;
  }
  return std::nullopt;
}

// One message carries one medium: every other attachment with a url goes as a line under the
// text ("filename: url"), rather than being lost.
std::string with_links(std::string text, std::string_view attachments_json,
                       const std::optional<media_choice>& sent) {
  rapidjson::Document doc;
  if (!parse_json(attachments_json, doc) || !doc.IsArray()) return text;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto url = text_member(doc[i], "url");
    if ((sent && sent->index == i) || url.empty()) continue;
    if (!text.empty()) text += '\n';
    if (const auto name = text_member(doc[i], "filename"); !name.empty())
      text.append(name).append(": ");
    text.append(url);
  }
  return text;
}

// ---- send answer -----------------------------------------------------------------------------


send_result limited(send_outcome o, std::string code, std::string reason,
                    std::chrono::milliseconds fallback,
                    const std::map<std::string, std::string>& headers) {
  send_result r;
  r.outcome = o;
  r.error_code = std::move(code);
  r.reason = std::move(reason);
  r.retry_after = retry_after_header(headers).value_or(fallback);
  return r;
}

send_result verdict(send_outcome o, std::string code, std::string reason) {
  send_result r;
  r.outcome = o;
  r.error_code = std::move(code);
  r.reason = std::move(reason);
  return r;
}

}  // namespace

// ---- public ----------------------------------------------------------------------------------

webhook_result verify_subscription(const settings& s, const webhook& w) {
  auto bad = [](std::string why) {
    return webhook_result::refuse(400, "invalid_verification", std::move(why));
  };
  auto url = boost::urls::parse_uri_reference(w.target);
  if (!url) return bad("the request target is not a valid URI");
  const auto params = url->params();  // percent-decoded, '+' as space
  auto get = [&](std::string_view key) -> std::optional<std::string> {
    auto it = params.find(key);
    if (it == params.end()) return std::nullopt;
    return std::string((*it).value);
  };
  const auto mode = get("hub.mode");
  if (!mode || *mode != "subscribe") return bad("hub.mode must be \"subscribe\"");
  const auto token = get("hub.verify_token");
  if (!token) return bad("hub.verify_token is missing");
  const auto challenge = get("hub.challenge");
  if (!challenge || challenge->empty()) return bad("hub.challenge is missing");
  if (challenge->size() > 1024) return bad("hub.challenge is longer than 1024 bytes");
  if (s.verify_token.empty() || !contract::secrets_equal(*token, s.verify_token)) {
    return webhook_result::refuse(403, "forbidden", "hub.verify_token does not match");
  }
  webhook_result r;
  r.reply_body = *challenge;
  r.reply_content_type = "text/plain";
  return r;
}

bool signature_valid(std::string_view app_secret, std::string_view body,
                     std::string_view header_value) {
  return detail::hmac_sha256_header_valid(app_secret, body, header_value);
}

webhook_result parse_webhook(const settings& s, const webhook& w) {
  const auto* signature = w.header("x-hub-signature-256");
  if (signature == nullptr || !signature_valid(s.app_secret, w.body, *signature)) {
    return webhook_result::refuse(401, "invalid_signature",
                                  "X-Hub-Signature-256 is missing or does not match the body");
  }
  const auto* content_type = w.header("content-type");
  if (content_type == nullptr || !is_json_content_type(*content_type)) {
    return webhook_result::refuse(415, "unsupported_media_type",
                                  "Content-Type must be application/json");
  }
  rapidjson::Document doc;
  if (const auto parsed = json::parse(w.body, doc, detail::body_limits(max_json_depth)); !parsed) {
    return parsed.code == json::error::too_large
               ? webhook_result::refuse(413, "payload_too_large", parsed.message())
               : webhook_result::refuse(400, "malformed_json", parsed.message());
  }
  auto invalid = [](std::string why) {
    return webhook_result::refuse(422, "invalid_payload", std::move(why));
  };
  if (!doc.IsObject() || text_member(doc, "object") != "whatsapp_business_account") {
    return invalid("object must be \"whatsapp_business_account\"");
  }
  const auto* entries = member(doc, "entry");
  if (entries == nullptr || !entries->IsArray()) return invalid("entry must be an array");

  // All or nothing: an item Bellhop cannot take refuses the whole post, so Meta retries it
  // (and alerts on the failing webhook) instead of Bellhop answering 200 for a partial loss.
  webhook_result r;
  for (rapidjson::SizeType i = 0; i < entries->Size(); ++i) {
    const auto& entry = (*entries)[i];
    const std::string where = "entry[" + std::to_string(i) + "]";
    const auto* changes = member(entry, "changes");
    if (changes == nullptr || !changes->IsArray())
      return invalid(where + ".changes must be an array");
    for (rapidjson::SizeType j = 0; j < changes->Size(); ++j) {
      auto why = take_change((*changes)[j], where + ".changes[" + std::to_string(j) + "]", r);
      if (!why.empty()) return invalid(std::move(why));
    }
  }
  return r;
}

std::string recipient_error(std::string_view to) {
  if (phone_digits(to) || is_bsuid(trim(to))) return "";
  return "to is neither a phone number nor a WhatsApp business-scoped user id";
}

namespace {

// Meta takes a phone number in "to" and a BSUID in "recipient" (if both, "to" wins). Anything
// else goes as it came, for Meta to refuse (a permanent error) rather than Bellhop guessing.
void put_recipient(json_writer& w, std::string_view to) {
  if (const auto phone = phone_digits(to)) {
    put(w, "to", *phone);
  } else if (const auto bsuid = trim(to); is_bsuid(bsuid)) {
    put(w, "recipient", bsuid);
  } else {
    put(w, "to", to);
  }
}

}  // namespace

std::optional<send_result> admit(outbound_message& m, std::int64_t now_ms, std::int64_t window_ms) {
  if (sends_template(m)) return std::nullopt;
  if (m.last_inbound_at && now_ms - *m.last_inbound_at < window_ms) return std::nullopt;
  if (m.template_msg) {
    m.text.clear();
    m.attachments_json = "[]";
    return std::nullopt;
  }
  return verdict(send_outcome::permanent, "outside_service_window", "outside_service_window");
}

http_call send_request(const settings& s, const outbound_message& m) {
  http_call call;
  call.method = "POST";
  std::string_view base = s.api_base_url;
  if (!base.empty() && base.back() == '/') base.remove_suffix(1);
  call.url = std::string(base) + "/" +
             boost::urls::encode(s.phone_number_id, boost::urls::unreserved_chars) + "/messages";
  call.headers = {{"Authorization", "Bearer " + s.access_token},
                  {"Content-Type", "application/json"}};

  if (sends_template(m)) {
    rapidjson::StringBuffer b;
    json_writer w(b);
    w.StartObject();
    put(w, "messaging_product", "whatsapp");
    put(w, "recipient_type", "individual");
    put_recipient(w, m.to);
    put(w, "type", "template");
    w.Key("template");
    w.StartObject();
    put(w, "name", m.template_msg->name);
    w.Key("language");
    w.StartObject();
    put(w, "code", m.template_msg->language);
    w.EndObject();
    if (!m.template_msg->components.empty()) {
      w.Key("components");
      write_template_components(w, m.template_msg->components);
    }
    w.EndObject();
    w.EndObject();
    call.body = written(b);
    return call;
  }

  auto media = pick_media(m.attachments_json);
  const auto text = with_links(m.text, m.attachments_json, media);
  rapidjson::StringBuffer b;
  json_writer w(b);
  w.StartObject();
  put(w, "messaging_product", "whatsapp");
  put(w, "recipient_type", "individual");
  put_recipient(w, m.to);
  // An audio message carries no caption: with a text, the audio goes as a document, which does,
  // rather than the text being lost.
  if (media && media->type == "audio" && !text.empty()) media->type = "document";
  if (media) {
    put(w, "type", media->type);
    w.Key(media->type.c_str());
    w.StartObject();
    if (!media->id.empty()) {
      put(w, "id", media->id);
    } else {
      put(w, "link", media->link);
    }
    if (has_caption(media->type) && !text.empty()) put(w, "caption", text);
    if (media->type == "document" && !media->filename.empty()) put(w, "filename", media->filename);
    w.EndObject();
  } else {
    put(w, "type", "text");
    w.Key("text");
    w.StartObject();
    w.Key("preview_url");
    w.Bool(false);
    put(w, "body", text);
    w.EndObject();
  }
  w.EndObject();
  call.body = written(b);
  return call;
}

send_result interpret_send(int http_status, std::string_view body,
                           const std::map<std::string, std::string>& headers) {
  rapidjson::Document doc;
  const bool parsed = parse_json(body, doc) && doc.IsObject();
  const std::string status_text = "HTTP " + std::to_string(http_status);

  if (http_status >= 200 && http_status < 300) {
    const auto* messages = parsed ? member(doc, "messages") : nullptr;
    const auto id = messages != nullptr && messages->IsArray() && !messages->Empty()
                        ? text_member((*messages)[0], "id")
                        : std::string_view();
    if (!id.empty()) {
      send_result r;
      r.outcome = send_outcome::sent;
      r.provider_message_id = id;
      return r;
    }
    return verdict(send_outcome::transient, "", status_text + " without a message id");
  }

  // Meta: build error handling on error.code (and error_data.details), not on the HTTP status.
  const auto* error = parsed ? member(doc, "error") : nullptr;
  const bool graph_error = error != nullptr && error->IsObject();
  const std::string code = graph_error ? code_of(member(error, "code")) : "";
  std::string said(text_member(error, "message"));
  if (const auto details = text_member(member(error, "error_data"), "details"); !details.empty()) {
    said += said.empty() ? std::string(details) : ": " + std::string(details);
  }
  if (said.empty()) said = status_text;

  if (code == "130429") {  // Rate limit hit: the number's messages-per-second throughput
    return limited(send_outcome::rate_limited, code, "throughput limit reached: " + said, 1s,
                   headers);
  }
  if (code == "4" || code == "80007") {
    // 4: the app's Graph API call limit; 80007: the WhatsApp Business Account's. Both are
    // rolling-window limits (Meta: "try again later"), so a second-scale retry only adds load.
    return limited(send_outcome::rate_limited, code, "API call limit reached: " + said, 60s,
                   headers);
  }
  if (code == "131056") {  // (Business Account, Consumer Account) pair rate limit hit
    return limited(send_outcome::recipient_limited, code,
                   "too many messages to this recipient: " + said, 6s, headers);
  }
  if (code == "131047") {
    // The 24-hour customer-service window is closed: Bellhop's own check (admit) let it
    // through on a last_inbound_at Meta does not share (a clock, a message Bellhop missed).
    return verdict(send_outcome::permanent, code, "outside_service_window");
  }
  if (code == "131026") {
    return verdict(
        send_outcome::permanent, code,
        "undeliverable: the recipient cannot receive this WhatsApp message (" + said + ")");
  }
  if (code == "130472") {
    return verdict(send_outcome::permanent, code,
                   "not sent: the recipient is part of a Meta marketing experiment (" + said + ")");
  }
  if (code == "2" || code == "131000") {  // Meta: temporary / unknown error, try again
    return verdict(send_outcome::transient, code, said);
  }
  if (http_status == 429) {
    return limited(send_outcome::rate_limited, code, "throttled: " + said, 1s, headers);
  }
  if (http_status >= 400 && http_status < 500 && http_status != 408 && graph_error) {
    return verdict(send_outcome::permanent, code, said);
  }
  // 5xx, 408, a 4xx whose body is not a Graph error (a proxy's page), 1xx/3xx: try again; the
  // attempts are bounded by outbound.max_attempts.
  return verdict(send_outcome::transient, code,
                 graph_error ? said : status_text + (parsed ? "" : " with an unreadable body"));
}

}  // namespace bellhop::channels::whatsapp
