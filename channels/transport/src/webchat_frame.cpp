#include "webchat_frame.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::gateway {
namespace {

bool client_id_shaped(std::string_view v) {
  return !v.empty() && v.size() <= contract::id_limits::webchat_client_id &&
         std::all_of(v.begin(), v.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

webchat_frame refused(std::string error) {
  webchat_frame f;
  f.error = std::move(error);
  return f;
}

}  // namespace

std::string webchat_error_frame(std::string_view code, std::string_view message,
                                std::string_view client_id, std::int64_t retry_after_ms) {
  std::string f =
      R"({"type":"error","code":)" + json::quote(code) + R"(,"message":)" + json::quote(message);
  if (!client_id.empty()) f += R"(,"client_id":)" + json::quote(client_id);
  if (retry_after_ms > 0) f += R"(,"retry_after_ms":)" + std::to_string(retry_after_ms);
  return f + "}";
}

webchat_frame parse_webchat_frame(std::string_view text) {
  rapidjson::Document d;
  if (const auto parsed =
          json::parse(text, d, {.max_bytes = webchat_max_frame_bytes, .max_depth = 32});
      !parsed)
    return refused(webchat_error_frame("malformed", parsed.message()));
  if (!d.IsObject() || !d.HasMember("type") || !d["type"].IsString())
    return refused(webchat_error_frame("malformed", "a frame is a JSON object with a \"type\""));
  const std::string type = d["type"].GetString();
  if (type == "message") {
    const auto* cid =
        d.HasMember("client_id") && d["client_id"].IsString() ? &d["client_id"] : nullptr;
    if (!cid || !client_id_shaped(cid->GetString()))
      return refused(webchat_error_frame("invalid_frame",
                                         "\"client_id\" is required: 1-64 letters, digits, - _ ."));
    const std::string client_id = cid->GetString();
    if (!d.HasMember("text") || !d["text"].IsString() || d["text"].GetStringLength() == 0)
      return refused(webchat_error_frame("invalid_frame", "\"text\" is required", client_id));
    webchat_frame f;
    f.what = webchat_frame::kind::message;
    f.client_id = client_id;
    f.text.assign(d["text"].GetString(), d["text"].GetStringLength());
    return f;
  }
  if (type == "received") {
    if (!d.HasMember("id") || !d["id"].IsString())
      return refused(webchat_error_frame("invalid_frame", "\"received\" needs the reply's \"id\""));
    webchat_frame f;
    f.what = webchat_frame::kind::received;
    f.id = d["id"].GetString();
    return f;
  }
  return refused(webchat_error_frame("unknown_type", "type must be \"message\" or \"received\""));
}

channels::guest_message webchat_guest_message(std::string_view guest, std::string_view client_id,
                                              std::string_view text) {
  channels::guest_message g;
  g.channel = "webchat";
  g.external_id = std::string(guest) + ":" + std::string(client_id);
  g.from = guest;
  g.text = text;
  return g;
}

}  // namespace bellhop::gateway
