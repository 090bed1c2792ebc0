#include "bellhop/core/inbound_message.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>
#include <optional>
#include <utility>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/utf8.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

using contract::is_property_id;

using rapidjson::Value;

validation_error invalid(std::string code, std::string message, std::string field,
                         int status = 422) {
  return validation_error{status, std::move(code), std::move(message), std::move(field)};
}

bool has_control_chars(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; });
}

// Loose RFC 3339 shape check: 2026-11-22T10:00:00Z, with optional fraction and offset.
bool looks_like_timestamp(std::string_view s) {
  if (s.size() < 20 || s.size() > 35) return false;
  auto digits = [&](std::size_t from, std::size_t n) {
    return std::all_of(s.begin() + static_cast<long>(from), s.begin() + static_cast<long>(from + n),
                       [](unsigned char c) { return std::isdigit(c); });
  };
  return digits(0, 4) && s[4] == '-' && digits(5, 2) && s[7] == '-' && digits(8, 2) &&
         (s[10] == 'T' || s[10] == 't') && digits(11, 2) && s[13] == ':' && digits(14, 2) &&
         s[16] == ':' && digits(17, 2) &&
         (s.back() == 'Z' || s.back() == 'z' || s[s.size() - 6] == '+' || s[s.size() - 6] == '-');
}

// One string field of the canonical message as the rules see it: absent (or null), a string,
// or (JSON only) given as another type.
struct text_field {
  bool present = false;
  bool is_string = true;
  std::string_view value;
};

// The canonical message (docs/http-api.md) whichever way it came: a request body's DOM or an
// adapter's typed guest_message. The rules and the envelope read only this, so both ways are
// checked and written by the same code.
struct message_view {
  text_field property_id, channel, external_id, from, to, account, guest_name, text, content_type,
      sent_at;
  bool attachments_present = false;
  bool attachments_array = true;    // JSON only: given as another type
  bool attachments_objects = true;  // JSON only: an element that is not an object
  std::size_t attachment_count = 0;
  const rapidjson::Value* attachments_value = nullptr;  // the JSON path writes the DOM's
  std::string_view attachments_json = "[]";             // the typed path its adapter's
  bool metadata_present = false;
  bool metadata_object = true;            // JSON only: given as another type
  std::string_view metadata_json = "{}";  // compact, as the envelope holds it
};

struct string_rule {
  const char* name;
  text_field message_view::*field;
  bool required;
  std::size_t max_bytes;
};

constexpr std::array known_fields = {"property_id",  "channel",     "external_id", "from",
                                     "to",           "account",     "guest_name",  "text",
                                     "content_type", "attachments", "sent_at",     "metadata"};

// Every rule of the canonical message but the JSON ones (syntax, size, depth, unknown fields),
// in the order the errors are reported.
std::optional<validation_error> check(const message_view& v, const inbound_limits& limits) {
  // Strings: required or not, and their byte limits.
  const string_rule rules[] = {
      {"property_id", &message_view::property_id, true, contract::id_limits::property_id},
      {"channel", &message_view::channel, true, contract::id_limits::channel},
      {"external_id", &message_view::external_id, true, max_external_id_bytes},
      {"from", &message_view::from, true, contract::id_limits::address},
      {"to", &message_view::to, false, contract::id_limits::address},
      {"account", &message_view::account, false, contract::id_limits::address},
      {"guest_name", &message_view::guest_name, false, max_guest_name_bytes},
      {"text", &message_view::text, false, limits.max_text_bytes},
      {"content_type", &message_view::content_type, false, 32},
      {"sent_at", &message_view::sent_at, false, 35},
  };
  for (const auto& rule : rules) {
    const text_field& f = v.*rule.field;
    if (!f.present) {
      if (rule.required) {
        return invalid("missing_field", std::string(rule.name) + " is required", rule.name);
      }
      continue;
    }
    if (!f.is_string) {
      return invalid("invalid_type", std::string(rule.name) + " must be a string", rule.name);
    }
    if (rule.required && f.value.empty()) {
      return invalid("invalid_field", std::string(rule.name) + " must not be empty", rule.name);
    }
    if (f.value.size() > rule.max_bytes) {
      return invalid(
          "too_long",
          std::string(rule.name) + " is longer than " + std::to_string(rule.max_bytes) + " bytes",
          rule.name);
    }
    if (std::string_view(rule.name) != "text" && has_control_chars(f.value)) {
      return invalid("invalid_field", std::string(rule.name) + " contains control characters",
                     rule.name);
    }
    if (f.value.find('\0') != std::string_view::npos) {
      return invalid("invalid_field", std::string(rule.name) + " contains a NUL character",
                     rule.name);
    }
  }
  if (!is_property_id(v.property_id.value)) {
    return invalid("invalid_field",
                   "property_id may contain only letters, digits, '-', '_' and '.'", "property_id");
  }
  if (!is_known_channel(v.channel.value)) {
    return invalid("unknown_channel", "channel must be one of whatsapp, sms, email, webchat",
                   "channel");
  }
  if (v.sent_at.present && !looks_like_timestamp(v.sent_at.value)) {
    return invalid("invalid_field", "sent_at must be an RFC 3339 timestamp", "sent_at");
  }
  if (v.attachments_present) {
    if (!v.attachments_array) {
      return invalid("invalid_type", "attachments must be an array", "attachments");
    }
    if (v.attachment_count > limits.max_attachments) {
      return invalid("too_long",
                     "at most " + std::to_string(limits.max_attachments) + " attachments",
                     "attachments");
    }
    if (!v.attachments_objects) {
      return invalid("invalid_type", "each attachment must be an object", "attachments");
    }
  }
  if (v.text.value.empty() && v.attachment_count == 0) {
    return invalid("missing_field", "text or attachments is required", "text");
  }
  if (v.metadata_present) {
    if (!v.metadata_object) {
      return invalid("invalid_type", "metadata must be an object", "metadata");
    }
    if (v.metadata_json.size() > limits.max_metadata_bytes) {
      return invalid(
          "too_long",
          "metadata is larger than " + std::to_string(limits.max_metadata_bytes) + " bytes",
          "metadata");
    }
  }
  return std::nullopt;
}

// The validated message and the envelope that goes to inbound:messages: canonical order,
// absent optional fields as null, defaults filled in.
inbound_message enrich(const message_view& v, std::chrono::system_clock::time_point now,
                       std::size_t size_hint) {
  inbound_message msg;
  msg.id = contract::make_message_id(now);
  msg.property_id = v.property_id.value;
  msg.channel = v.channel.value;
  msg.external_id = v.external_id.value;
  msg.conversation_id = contract::make_conversation_id(msg.property_id, msg.channel, v.from.value);
  msg.from = v.from.value;
  msg.account = v.account.value;
  msg.guest_name = v.guest_name.value;
  msg.received_at = contract::format_timestamp(now);
  msg.received_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();

  rapidjson::StringBuffer out(nullptr, size_hint + 256);
  json::writer w(out);
  auto put = [&](const char* name, std::string_view value) { json::put(w, name, value); };
  auto put_optional = [&](const char* name, const text_field& f) {
    if (f.present) return put(name, f.value);
    w.Key(name);
    w.Null();
  };
  w.StartObject();
  put("id", msg.id);
  put("property_id", msg.property_id);
  put("channel", msg.channel);
  put("external_id", msg.external_id);
  put("from", msg.from);
  put_optional("to", v.to);
  put_optional("account", v.account);
  put_optional("guest_name", v.guest_name);
  put("text", v.text.value);
  put("content_type", v.content_type.value.empty() ? "text" : v.content_type.value);
  w.Key("attachments");
  if (v.attachments_value != nullptr) {
    v.attachments_value->Accept(w);
  } else {
    w.RawValue(v.attachments_json.data(), v.attachments_json.size(), rapidjson::kArrayType);
  }
  put_optional("sent_at", v.sent_at);
  w.Key("metadata");
  w.RawValue(v.metadata_json.data(), v.metadata_json.size(), rapidjson::kObjectType);
  put("conversation_id", msg.conversation_id);
  put("received_at", msg.received_at);
  put("direction", "inbound");
  // Last: ingest.lua writes "human" here for a conversation with staff (docs/ai-engine.md).
  put("conversation_mode", "ai");
  w.EndObject();
  msg.envelope.assign(out.GetString(), out.GetSize());
  return msg;
}

// A string the adapter left empty is absent, as the canonical body it stands for leaves it out.
text_field given(std::string_view value) {
  return {!value.empty(), true, value};
}

}  // namespace

bool is_known_channel(std::string_view channel) {
  return channel == "whatsapp" || channel == "sms" || channel == "email" || channel == "webchat";
}

boost::system::result<inbound_message, validation_error> parse_inbound_message(
    std::string_view body, const inbound_limits& limits,
    std::chrono::system_clock::time_point now) {
  if (body.empty()) return invalid("malformed_json", "the request body is empty", "", 400);
  // The DOM lives in a buffer on the stack for typical bodies: RapidJSON's default pool would
  // malloc a 64 KiB chunk per request (and glibc consolidates its fast bins for it).
  char pool[8192];
  rapidjson::MemoryPoolAllocator<> allocator(pool, sizeof pool);
  rapidjson::Document doc(&allocator);
  const auto parsed = json::parse(
      body, doc,
      {.max_bytes = limits.max_body_bytes, .max_depth = static_cast<unsigned>(limits.max_depth)});
  if (parsed.code == json::error::too_large)
    return invalid("payload_too_large", parsed.message(), "", 413);
  if (!parsed) return invalid("malformed_json", parsed.message(), "", 400);
  if (!doc.IsObject()) return invalid("invalid_message", "the body must be a JSON object", "");

  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string_view name(it->name.GetString(), it->name.GetStringLength());
    if (std::find(known_fields.begin(), known_fields.end(), name) == known_fields.end()) {
      return invalid("unknown_field", "unknown field '" + std::string(name) + "'",
                     std::string(name));
    }
  }

  message_view v;
  auto field = [&](const char* name) -> text_field {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || it->value.IsNull()) return {};
    if (!it->value.IsString()) return {true, false, {}};
    return {true, true, {it->value.GetString(), it->value.GetStringLength()}};
  };
  v.property_id = field("property_id");
  v.channel = field("channel");
  v.external_id = field("external_id");
  v.from = field("from");
  v.to = field("to");
  v.account = field("account");
  v.guest_name = field("guest_name");
  v.text = field("text");
  v.content_type = field("content_type");
  v.sent_at = field("sent_at");
  if (auto a = doc.FindMember("attachments"); a != doc.MemberEnd() && !a->value.IsNull()) {
    v.attachments_present = true;
    v.attachments_array = a->value.IsArray();
    if (v.attachments_array) {
      v.attachments_value = &a->value;
      v.attachment_count = a->value.Size();
      for (const auto& e : a->value.GetArray()) v.attachments_objects &= e.IsObject();
    }
  }
  // Metadata is written once: the text that is measured goes into the envelope as it is.
  rapidjson::StringBuffer metadata;
  if (auto m = doc.FindMember("metadata"); m != doc.MemberEnd() && !m->value.IsNull()) {
    v.metadata_present = true;
    v.metadata_object = m->value.IsObject();
    if (v.metadata_object) {
      rapidjson::Writer<rapidjson::StringBuffer> w(metadata);
      m->value.Accept(w);
      v.metadata_json = {metadata.GetString(), metadata.GetSize()};
    }
  }
  if (auto error = check(v, limits)) return std::move(*error);
  return enrich(v, now, body.size());
}

boost::system::result<inbound_message, validation_error> validate_inbound_message(
    const channels::guest_message& g, std::string_view property_id, const inbound_limits& limits,
    std::chrono::system_clock::time_point now) {
  // Adapters keep to UTF-8 (a Twilio form field that is not is refused there): checked here as
  // the parser checks a request body, so no envelope carries anything else.
  const std::pair<const char*, std::string_view> strings[] = {{"property_id", property_id},
                                                              {"channel", g.channel},
                                                              {"external_id", g.external_id},
                                                              {"from", g.from},
                                                              {"to", g.to},
                                                              {"account", g.account},
                                                              {"guest_name", g.guest_name},
                                                              {"text", g.text},
                                                              {"content_type", g.content_type},
                                                              {"sent_at", g.sent_at},
                                                              {"attachments", g.attachments_json},
                                                              {"metadata", g.metadata_json}};
  for (const auto& [name, value] : strings) {
    if (!json::is_valid_utf8(value))
      return invalid("malformed_json", std::string(name) + " is not valid UTF-8", name, 400);
  }
  message_view v;
  // Required strings are given even when empty: "must not be empty", as for a body that has them.
  v.property_id = {true, true, property_id};
  v.channel = {true, true, g.channel};
  v.external_id = {true, true, g.external_id};
  v.from = {true, true, g.from};
  v.to = given(g.to);
  v.account = given(g.account);
  v.guest_name = given(g.guest_name);
  v.text = given(g.text);
  v.content_type = given(g.content_type);
  v.sent_at = given(g.sent_at);
  v.attachments_present = true;
  v.attachment_count = g.attachment_count;
  v.attachments_json = g.attachments_json;
  v.metadata_present = true;
  // The gateway's own note goes first, next to the adapter's members (docs/http-api.md).
  std::string noted;
  if (g.text_truncated) {
    const bool empty = g.metadata_json == "{}";  // adapters write compact JSON
    noted = R"({"text_truncated":true)" + (empty ? "}" : "," + g.metadata_json.substr(1));
  }
  v.metadata_json = g.text_truncated ? std::string_view(noted) : std::string_view(g.metadata_json);
  if (auto error = check(v, limits)) return std::move(*error);
  return enrich(v, now, g.text.size() + g.attachments_json.size() + v.metadata_json.size() + 512);
}

}  // namespace bellhop::gateway
