#include "client_frame.hpp"

#include <rapidjson/document.h>

#include "bellhop/json/parse.hpp"

namespace bellhop::realtime {
namespace {

std::string member_string(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  if (it == o.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

boost::system::result<client_frame, std::string> parse_client_frame(std::string_view text,
                                                                    std::size_t max_bytes) {
  using r = boost::system::result<client_frame, std::string>;
  char pool[4096];
  rapidjson::MemoryPoolAllocator<> allocator(pool, sizeof pool);
  rapidjson::Document doc(&allocator);
  // Bounded like every untrusted JSON: the frame limit, 32 levels, UTF-8.
  const auto parsed = json::parse(text, doc, {.max_bytes = max_bytes, .max_depth = 32});
  if (!parsed || !doc.IsObject()) {
    return r(boost::system::in_place_error,
             parsed ? std::string("a frame must be a JSON object") : parsed.message());
  }
  client_frame f;
  f.type = member_string(doc, "type");
  f.token = member_string(doc, "token");
  f.property_id = member_string(doc, "property_id");
  f.conversation_id = member_string(doc, "conversation_id");
  f.client_msg_id = member_string(doc, "client_msg_id");
  f.text = member_string(doc, "text");
  if (auto it = doc.FindMember("since"); it != doc.MemberEnd() && !it->value.IsNull()) {
    if (it->value.IsUint64())
      f.since = it->value.GetUint64();
    else
      f.since_invalid = true;
  }
  return f;
}

}  // namespace bellhop::realtime
