#include "envelope.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::demo {
namespace {

using json::put;
using json::writer;

// The channel becomes part of a Redis key (outbound:<channel>), so only plain names pass.
bool valid_channel(std::string_view c) {
  if (c.empty() || c.size() > 64) return false;
  for (char ch : c) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

using parsed = boost::system::result<envelope, std::string>;

// envelope is an aggregate, so a bare std::string would convert both ways: say which.
parsed bad(std::string why) {
  return parsed(boost::system::in_place_error, std::move(why));
}

}  // namespace

boost::system::result<envelope, std::string> parse_envelope(std::string_view json) {
  // Bounded like all JSON from Redis: Bellhop writes envelopes far smaller than 1 MiB, nested
  // at most inbound.max_depth (16) levels.
  rapidjson::Document doc;
  if (const auto r = bellhop::json::parse(json, doc, {.max_bytes = 1 << 20, .max_depth = 32}); !r)
    return bad(r.message());
  if (!doc.IsObject()) return bad("not a JSON object");

  envelope e;
  struct field {
    const char* name;
    std::string* out;
  };
  for (auto [name, out] :
       {field{"id", &e.id}, field{"property_id", &e.property_id}, field{"channel", &e.channel},
        field{"from", &e.from}, field{"conversation_id", &e.conversation_id}}) {
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd() || !it->value.IsString() || it->value.GetStringLength() == 0) {
      return bad(std::string("\"") + name + "\" must be a non-empty string");
    }
    out->assign(it->value.GetString(), it->value.GetStringLength());
  }
  if (!valid_channel(e.channel)) return bad("\"channel\" is not a plain channel name");
  if (auto it = doc.FindMember("conversation_mode");
      it != doc.MemberEnd() && it->value.IsString() && it->value == "human")
    e.conversation_mode = "human";
  if (auto it = doc.FindMember("text"); it != doc.MemberEnd()) {
    if (it->value.IsString()) {
      e.text.assign(it->value.GetString(), it->value.GetStringLength());
    } else if (!it->value.IsNull()) {
      return bad("\"text\" must be a string");
    }
  }
  return e;
}

std::string make_reply(const envelope& in, std::string_view text) {
  rapidjson::StringBuffer buf;
  writer w(buf);
  w.StartObject();
  put(w, "property_id", in.property_id);
  put(w, "channel", in.channel);
  put(w, "to", in.from);
  put(w, "text", text);
  put(w, "conversation_id", in.conversation_id);
  put(w, "reply_to", in.id);
  // 1-4: an answer to a guest who is writing is never held for quiet hours (5-10 are bulk,
  // docs/ai-engine.md "Replies").
  w.Key("priority");
  w.Int(3);
  put(w, "idempotency_key", "reply:" + in.id);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

std::string make_handoff(const envelope& in) {
  rapidjson::StringBuffer buf;
  writer w(buf);
  w.StartObject();
  put(w, "property_id", in.property_id);
  put(w, "channel", in.channel);
  put(w, "to", in.from);
  put(w, "conversation_id", in.conversation_id);
  put(w, "reply_to", in.id);
  w.Key("handoff");
  w.StartObject();
  put(w, "reason", "no canned answer for this question");
  w.Key("confidence");
  w.Double(0.1);  // the demo only knows its FAQ: anything else is a guess it does not make
  w.EndObject();
  put(w, "idempotency_key", "handoff:" + in.id);
  w.EndObject();
  return {buf.GetString(), buf.GetSize()};
}

}  // namespace bellhop::demo
