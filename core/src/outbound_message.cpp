#include "bellhop/core/outbound_message.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <charconv>
#include <chrono>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

bool is_message_id(std::string_view s) {
  return s.size() == 26 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
         });
}

using json::put;
using json::put_or_null;
using json::writer;
std::string str(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  if (it == o.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}
std::string raw_json(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  writer w(b);
  v.Accept(w);
  return {b.GetString(), b.GetSize()};
}

using filed = normalized_outbound;

// The fields of an element that are not where the typed message can hold them: the JSON
// types the checks refuse, in check()'s order.
struct json_faults {
  bool attachments_not_array = false;
  channels::template_fault template_fault;
  bool bad_priority = false;
  bool bad_delay = false;
  bool bad_source = false;
  std::string bad_handoff;  // why the handoff object is refused
  bool bad_account = false;
};

constexpr std::size_t max_handoff_reason_bytes = 500;

// `handoff`: {"reason": string (required), "confidence": number from 0 to 1 (optional)}.
std::string read_handoff(const rapidjson::Value& v, normalized_outbound::handoff_request& out) {
  if (!v.IsObject()) return "handoff must be an object";
  const auto reason = v.FindMember("reason");
  if (reason == v.MemberEnd() || !reason->value.IsString() || reason->value.GetStringLength() == 0)
    return "handoff.reason must be a non-empty string";
  if (reason->value.GetStringLength() > max_handoff_reason_bytes)
    return "handoff.reason is longer than " + std::to_string(max_handoff_reason_bytes) + " bytes";
  out.reason.assign(reason->value.GetString(), reason->value.GetStringLength());
  if (const auto c = v.FindMember("confidence"); c != v.MemberEnd() && !c->value.IsNull()) {
    if (!c->value.IsNumber()) return "handoff.confidence must be a number from 0 to 1";
    const double d = c->value.GetDouble();
    if (!(d >= 0 && d <= 1)) return "handoff.confidence must be a number from 0 to 1";
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    if (ec == std::errc()) out.confidence.assign(buf, end);
  }
  return "";
}

// Every rule of the canonical outbound message (docs/outbound.md) but the JSON ones, in the
// order they are reported: "" when it may be filed, else why not (and the template's field at
// fault in `field`, for a template refused).
std::string check(const filed& f, std::string_view channel, const json_faults& faults,
                  std::string& field) {
  const auto& m = f.msg;
  if (!contract::is_property_id(m.property_id))
    return "property_id is missing or not a property id";
  if (m.channel.size() > contract::id_limits::channel)
    return "channel is longer than " + std::to_string(contract::id_limits::channel) + " bytes";
  if (!channel.empty() && m.channel != channel)
    return "channel does not match the queue outbound:" + std::string(channel);
  if (m.to.empty() || m.to.size() > contract::id_limits::address)
    return "to is missing or too long";
  if (m.text.size() > 65536) return "text is longer than 65536 bytes";
  if (faults.attachments_not_array) return "attachments must be an array";
  if (!faults.template_fault.message.empty()) {
    field = faults.template_fault.field;
    return faults.template_fault.message;
  }
  if (m.template_msg && m.channel != "whatsapp") {
    field = "template";
    return "template is for the whatsapp channel only";
  }
  if (!faults.bad_handoff.empty()) return faults.bad_handoff;
  if (!f.has_message() && !f.handoff) return "text, attachments or template is required";
  if (faults.bad_source) return "source must be \"ai\" or \"staff\"";
  if (faults.bad_priority || m.priority < 1 || m.priority > 10)
    return "priority must be an integer from 1 to 10";
  if (faults.bad_delay || f.delay_ms < 0) return "delay_ms must be a non-negative integer";
  if (m.conversation_id.size() > contract::id_limits::outbound_conversation_id)
    return "conversation_id is longer than " +
           std::to_string(contract::id_limits::outbound_conversation_id) + " bytes";
  if (m.reply_to.size() > contract::id_limits::reply_to)
    return "reply_to is longer than " + std::to_string(contract::id_limits::reply_to) + " bytes";
  if (faults.bad_account || m.account.size() > contract::id_limits::address ||
      std::any_of(m.account.begin(), m.account.end(),
                  [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
    return "account must be a string of at most " + std::to_string(contract::id_limits::address) +
           " bytes without control characters";
  if (f.idempotency_key.size() > contract::id_limits::idempotency_key)
    return "idempotency_key is longer than " + std::to_string(contract::id_limits::idempotency_key) +
           " bytes";
  return "";
}

// A kept id, or a new one; the time of filing when none is given.
void complete(filed& f) {
  auto& m = f.msg;
  if (!is_message_id(m.id)) m.id = contract::make_message_id(std::chrono::system_clock::now());
  if (f.created_at.empty()) f.created_at = contract::format_timestamp(std::chrono::system_clock::now());
}

// The claim script reads id and priority with a pattern: they come first, in this order.
void write(filed& f) {
  const auto& m = f.msg;
  rapidjson::StringBuffer b(nullptr, m.text.size() + m.attachments_json.size() + 512);
  writer w(b);
  w.StartObject();
  put(w, "id", m.id);
  w.Key("priority");
  w.Int(m.priority);
  put(w, "property_id", m.property_id);
  put(w, "channel", m.channel);
  put(w, "to", m.to);
  put(w, "text", m.text);
  w.Key("attachments");
  w.RawValue(m.attachments_json.data(), m.attachments_json.size(), rapidjson::kArrayType);
  if (m.template_msg) {
    w.Key("template");
    channels::write_template(w, *m.template_msg);
  }
  put_or_null(w, "conversation_id", m.conversation_id);
  put_or_null(w, "reply_to", m.reply_to);
  put_or_null(w, "idempotency_key", f.idempotency_key);
  put(w, "created_at", f.created_at);
  if (!f.sent_by.empty()) put(w, "sent_by", f.sent_by);
  if (f.source != "ai") put(w, "source", f.source);
  if (!m.account.empty()) put(w, "account", m.account);
  if (!m.extras.empty()) {
    w.Key("extras");
    w.StartObject();
    for (const auto& [k, v] : m.extras) put(w, k.c_str(), v);
    w.EndObject();
  }
  w.EndObject();
  f.json.assign(b.GetString(), b.GetSize());
}

}  // namespace

std::string read_outbound(std::string_view raw, std::string_view channel, filed& f,
                          std::size_t max_bytes) {
  rapidjson::Document d;
  const auto parsed = json::parse(raw, d, {.max_bytes = max_bytes, .max_depth = 32});
  if (!parsed || !d.IsObject()) {
    f.refused = poison_reason(parsed);
    return parsed ? "not a JSON object" : "not a JSON object: " + parsed.message();
  }
  f.refused = "invalid";
  auto& m = f.msg;
  json_faults faults;
  m.property_id = str(d, "property_id");
  m.channel = str(d, "channel");
  if (m.channel.empty()) m.channel = std::string(channel);
  m.to = str(d, "to");
  m.text = str(d, "text");
  if (auto a = d.FindMember("attachments"); a != d.MemberEnd() && !a->value.IsNull()) {
    faults.attachments_not_array = !a->value.IsArray();
    if (!faults.attachments_not_array) m.attachments_json = raw_json(a->value);
  }
  if (auto t = d.FindMember("template"); t != d.MemberEnd() && !t->value.IsNull()) {
    faults.template_fault = channels::read_template(t->value, m.template_msg.emplace());
  }
  if (auto p = d.FindMember("priority"); p != d.MemberEnd() && !p->value.IsNull()) {
    faults.bad_priority = !p->value.IsInt();
    if (!faults.bad_priority) m.priority = p->value.GetInt();
  }
  if (auto p = d.FindMember("delay_ms"); p != d.MemberEnd() && !p->value.IsNull()) {
    faults.bad_delay = !p->value.IsInt64();
    if (!faults.bad_delay) f.delay_ms = p->value.GetInt64();
  }
  if (auto p = d.FindMember("source"); p != d.MemberEnd() && !p->value.IsNull()) {
    f.source = str(d, "source");
    faults.bad_source = f.source != "ai" && f.source != "staff";
  }
  if (auto h = d.FindMember("handoff"); h != d.MemberEnd() && !h->value.IsNull()) {
    normalized_outbound::handoff_request handoff;
    faults.bad_handoff = read_handoff(h->value, handoff);
    if (faults.bad_handoff.empty()) f.handoff = std::move(handoff);
  }
  m.conversation_id = str(d, "conversation_id");
  m.reply_to = str(d, "reply_to");
  if (auto a = d.FindMember("account"); a != d.MemberEnd() && !a->value.IsNull()) {
    faults.bad_account = !a->value.IsString();
    m.account = str(d, "account");
  }
  f.idempotency_key = str(d, "idempotency_key");
  if (auto error = check(f, channel, faults, f.refused_field); !error.empty()) return error;
  m.id = str(d, "id");
  f.created_at = str(d, "created_at");
  complete(f);
  f.sent_by = str(d, "sent_by");
  if (auto e = d.FindMember("extras"); e != d.MemberEnd() && e->value.IsObject()) {
    for (auto it = e->value.MemberBegin(); it != e->value.MemberEnd(); ++it)
      if (it->value.IsString()) m.extras[it->name.GetString()] = it->value.GetString();
  }
  f.refused = {};
  return "";
}

std::string normalize_outbound(std::string_view raw, std::string_view channel, filed& f,
                               std::size_t max_bytes) {
  auto error = read_outbound(raw, channel, f, max_bytes);
  if (error.empty()) write(f);
  return error;
}

std::string file_outbound(filed& f, std::string_view channel) {
  if (f.msg.channel.empty()) f.msg.channel = std::string(channel);
  if (auto error = check(f, channel, {}, f.refused_field); !error.empty()) {
    f.refused = "invalid";
    return error;
  }
  complete(f);
  write(f);
  f.refused = {};
  return "";
}

std::string outbound_digest(std::string_view normalized_json) {
  return contract::sha256_hex(normalized_json, 16);
}

std::string conversation_of(const channels::outbound_message& m) {
  return contract::is_conversation_id(m.conversation_id)
             ? m.conversation_id
             : contract::make_conversation_id(m.property_id, m.channel, m.to);
}

}  // namespace bellhop::gateway
