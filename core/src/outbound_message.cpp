#include "bellhop/core/outbound_message.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
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

}  // namespace

// The claim script reads id and priority with a pattern: they come first, in this order.
std::string normalize_outbound(std::string_view raw, std::string_view channel, filed& f,
                               std::size_t max_bytes) {
  rapidjson::Document d;
  const auto parsed = json::parse(raw, d, {.max_bytes = max_bytes, .max_depth = 32});
  if (!parsed || !d.IsObject()) {
    f.refused = poison_reason(parsed);
    return parsed ? "not a JSON object" : "not a JSON object: " + parsed.message();
  }
  f.refused = "invalid";
  auto& m = f.msg;
  m.property_id = str(d, "property_id");
  if (!contract::is_property_id(m.property_id))
    return "property_id is missing or not a property id";
  m.channel = str(d, "channel");
  if (m.channel.empty()) m.channel = std::string(channel);
  if (m.channel.size() > contract::id_limits::channel)
    return "channel is longer than " + std::to_string(contract::id_limits::channel) + " bytes";
  if (!channel.empty() && m.channel != channel)
    return "channel does not match the queue outbound:" + std::string(channel);
  m.to = str(d, "to");
  if (m.to.empty() || m.to.size() > contract::id_limits::address) return "to is missing or too long";
  m.text = str(d, "text");
  if (m.text.size() > 65536) return "text is longer than 65536 bytes";
  if (auto a = d.FindMember("attachments"); a != d.MemberEnd() && !a->value.IsNull()) {
    if (!a->value.IsArray()) return "attachments must be an array";
    m.attachments_json = raw_json(a->value);
  }
  if (m.text.empty() && m.attachments_json == "[]") return "text or attachments is required";
  if (auto p = d.FindMember("priority"); p != d.MemberEnd() && !p->value.IsNull()) {
    if (!p->value.IsInt() || p->value.GetInt() < 1 || p->value.GetInt() > 10)
      return "priority must be an integer from 1 to 10";
    m.priority = p->value.GetInt();
  }
  if (auto p = d.FindMember("delay_ms"); p != d.MemberEnd() && !p->value.IsNull()) {
    if (!p->value.IsInt64() || p->value.GetInt64() < 0)
      return "delay_ms must be a non-negative integer";
    f.delay_ms = p->value.GetInt64();
  }
  m.conversation_id = str(d, "conversation_id");
  if (m.conversation_id.size() > contract::id_limits::outbound_conversation_id)
    return "conversation_id is longer than " +
           std::to_string(contract::id_limits::outbound_conversation_id) + " bytes";
  m.reply_to = str(d, "reply_to");
  if (m.reply_to.size() > contract::id_limits::reply_to)
    return "reply_to is longer than " + std::to_string(contract::id_limits::reply_to) + " bytes";
  f.idempotency_key = str(d, "idempotency_key");
  if (f.idempotency_key.size() > contract::id_limits::idempotency_key)
    return "idempotency_key is longer than " + std::to_string(contract::id_limits::idempotency_key) +
           " bytes";
  std::string id = str(d, "id");
  m.id = is_message_id(id) ? id : contract::make_message_id(std::chrono::system_clock::now());
  f.created_at = str(d, "created_at");
  if (f.created_at.empty()) f.created_at = contract::format_timestamp(std::chrono::system_clock::now());
  if (auto e = d.FindMember("extras"); e != d.MemberEnd() && e->value.IsObject()) {
    for (auto it = e->value.MemberBegin(); it != e->value.MemberEnd(); ++it)
      if (it->value.IsString()) m.extras[it->name.GetString()] = it->value.GetString();
  }

  rapidjson::StringBuffer b;
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
  put_or_null(w, "conversation_id", m.conversation_id);
  put_or_null(w, "reply_to", m.reply_to);
  put_or_null(w, "idempotency_key", f.idempotency_key);
  put(w, "created_at", f.created_at);
  if (auto s = str(d, "sent_by"); !s.empty()) put(w, "sent_by", s);
  if (!m.extras.empty()) {
    w.Key("extras");
    w.StartObject();
    for (const auto& [k, v] : m.extras) put(w, k.c_str(), v);
    w.EndObject();
  }
  w.EndObject();
  f.json.assign(b.GetString(), b.GetSize());
  f.refused = {};
  return "";
}

std::string outbound_digest(std::string_view normalized_json) {
  return contract::sha256_hex(normalized_json, 16);
}

}  // namespace bellhop::gateway
