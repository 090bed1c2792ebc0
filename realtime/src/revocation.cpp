#include "revocation.hpp"

#include <rapidjson/document.h>

#include "bellhop/contract/staff_token.hpp"
#include "bellhop/json/parse.hpp"

namespace bellhop::realtime {
namespace {

// A non-empty string of at most max_subject_bytes (a user name or a session id); nullopt when
// absent, "" when present but not such a string.
std::optional<std::string> member(const rapidjson::Value& o, const char* name) {
  const auto it = o.FindMember(name);
  if (it == o.MemberEnd()) return std::nullopt;
  const auto& v = it->value;
  if (!v.IsString() || v.GetStringLength() == 0 ||
      v.GetStringLength() > contract::max_subject_bytes)
    return std::string();
  return std::string(v.GetString(), v.GetStringLength());
}

}  // namespace

std::optional<revocation> parse_revocation(std::string_view payload) {
  rapidjson::Document doc;
  if (!json::parse(payload, doc, {.max_bytes = 1024, .max_depth = 4}) || !doc.IsObject())
    return std::nullopt;
  const auto user = member(doc, "user");
  const auto session = member(doc, "session");
  if (user.has_value() == session.has_value()) return std::nullopt;  // both or neither
  revocation r;
  if (user) r.user = *user;
  if (session) r.session_id = *session;
  if (r.user.empty() && r.session_id.empty()) return std::nullopt;
  return r;
}

}  // namespace bellhop::realtime
