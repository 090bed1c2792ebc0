#include "bellhop/core/inbound_message.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <array>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/json/parse.hpp"
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

struct string_rule {
  const char* name;
  bool required;
  std::size_t max_bytes;
};

constexpr std::array known_fields = {"property_id", "channel",    "external_id", "from",
                                     "to",          "guest_name", "text",        "content_type",
                                     "attachments", "sent_at",    "metadata"};

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

  // Strings: required or not, and their byte limits.
  const string_rule rules[] = {
      {"property_id", true, contract::id_limits::property_id},
      {"channel", true, contract::id_limits::channel},
      {"external_id", true, max_external_id_bytes},
      {"from", true, contract::id_limits::address},
      {"to", false, contract::id_limits::address},
      {"guest_name", false, max_guest_name_bytes},
      {"text", false, limits.max_text_bytes},
      {"content_type", false, 32},
      {"sent_at", false, 35},
  };
  for (const auto& rule : rules) {
    auto it = doc.FindMember(rule.name);
    if (it == doc.MemberEnd() || it->value.IsNull()) {
      if (rule.required) {
        return invalid("missing_field", std::string(rule.name) + " is required", rule.name);
      }
      continue;
    }
    if (!it->value.IsString()) {
      return invalid("invalid_type", std::string(rule.name) + " must be a string", rule.name);
    }
    std::string_view v(it->value.GetString(), it->value.GetStringLength());
    if (rule.required && v.empty()) {
      return invalid("invalid_field", std::string(rule.name) + " must not be empty", rule.name);
    }
    if (v.size() > rule.max_bytes) {
      return invalid(
          "too_long",
          std::string(rule.name) + " is longer than " + std::to_string(rule.max_bytes) + " bytes",
          rule.name);
    }
    if (std::string_view(rule.name) != "text" && has_control_chars(v)) {
      return invalid("invalid_field", std::string(rule.name) + " contains control characters",
                     rule.name);
    }
    if (v.find('\0') != std::string_view::npos) {
      return invalid("invalid_field", std::string(rule.name) + " contains a NUL character",
                     rule.name);
    }
  }
  auto str = [&](const char* name) -> std::string_view {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsString()) return {};
    return {it->value.GetString(), it->value.GetStringLength()};
  };
  if (!is_property_id(str("property_id"))) {
    return invalid("invalid_field",
                   "property_id may contain only letters, digits, '-', '_' and '.'", "property_id");
  }
  if (!is_known_channel(str("channel"))) {
    return invalid("unknown_channel", "channel must be one of whatsapp, sms, email, webchat",
                   "channel");
  }
  if (auto sent = doc.FindMember("sent_at");
      sent != doc.MemberEnd() && sent->value.IsString() && !looks_like_timestamp(str("sent_at"))) {
    return invalid("invalid_field", "sent_at must be an RFC 3339 timestamp", "sent_at");
  }

  auto attachments = doc.FindMember("attachments");
  bool has_attachments = false;
  if (attachments != doc.MemberEnd() && !attachments->value.IsNull()) {
    if (!attachments->value.IsArray()) {
      return invalid("invalid_type", "attachments must be an array", "attachments");
    }
    if (attachments->value.Size() > limits.max_attachments) {
      return invalid("too_long",
                     "at most " + std::to_string(limits.max_attachments) + " attachments",
                     "attachments");
    }
    for (const auto& a : attachments->value.GetArray()) {
      if (!a.IsObject()) {
        return invalid("invalid_type", "each attachment must be an object", "attachments");
      }
    }
    has_attachments = attachments->value.Size() > 0;
  }
  if (str("text").empty() && !has_attachments) {
    return invalid("missing_field", "text or attachments is required", "text");
  }
  auto metadata = doc.FindMember("metadata");
  if (metadata != doc.MemberEnd() && !metadata->value.IsNull()) {
    if (!metadata->value.IsObject()) {
      return invalid("invalid_type", "metadata must be an object", "metadata");
    }
    rapidjson::StringBuffer size_probe;
    rapidjson::Writer<rapidjson::StringBuffer> w(size_probe);
    metadata->value.Accept(w);
    if (size_probe.GetSize() > limits.max_metadata_bytes) {
      return invalid(
          "too_long",
          "metadata is larger than " + std::to_string(limits.max_metadata_bytes) + " bytes",
          "metadata");
    }
  }

  inbound_message msg;
  msg.id = contract::make_message_id(now);
  msg.property_id = str("property_id");
  msg.channel = str("channel");
  msg.external_id = str("external_id");
  msg.conversation_id = contract::make_conversation_id(msg.property_id, msg.channel, str("from"));
  msg.from = str("from");
  msg.guest_name = str("guest_name");
  msg.received_at = contract::format_timestamp(now);
  msg.received_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();

  // The envelope: canonical order, absent optional fields as null, defaults filled in.
  rapidjson::StringBuffer out(nullptr, body.size() + 256);
  json::writer w(out);
  auto put_optional = [&](const char* name) {
    auto it = doc.FindMember(name);
    w.Key(name);
    if (it == doc.MemberEnd() || it->value.IsNull()) {
      w.Null();
    } else {
      it->value.Accept(w);
    }
  };
  w.StartObject();
  json::put(w, "id", msg.id);
  json::put(w, "property_id", msg.property_id);
  json::put(w, "channel", msg.channel);
  json::put(w, "external_id", msg.external_id);
  json::put(w, "from", str("from"));
  put_optional("to");
  put_optional("guest_name");
  json::put(w, "text", str("text"));
  json::put(w, "content_type", str("content_type").empty() ? "text" : str("content_type"));
  w.Key("attachments");
  if (attachments != doc.MemberEnd() && attachments->value.IsArray()) {
    attachments->value.Accept(w);
  } else {
    w.StartArray();
    w.EndArray();
  }
  put_optional("sent_at");
  w.Key("metadata");
  if (metadata != doc.MemberEnd() && metadata->value.IsObject()) {
    metadata->value.Accept(w);
  } else {
    w.StartObject();
    w.EndObject();
  }
  json::put(w, "conversation_id", msg.conversation_id);
  json::put(w, "received_at", msg.received_at);
  json::put(w, "direction", "inbound");
  w.EndObject();
  msg.envelope.assign(out.GetString(), out.GetSize());
  return msg;
}

}  // namespace bellhop::gateway
