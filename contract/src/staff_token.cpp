#include "bellhop/contract/staff_token.hpp"

#include <jwt.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <boost/throw_exception.hpp>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "bellhop/json/parse.hpp"
#include "bellhop/json/write.hpp"

namespace bellhop::contract {
namespace {

struct jwt_deleter {
  void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_deleter>;

// Strings libjwt returns from jwt_get_grants_json / jwt_encode_str are malloc'd.
struct malloc_deleter {
  void operator()(char* p) const noexcept { std::free(p); }
};
using c_string = std::unique_ptr<char, malloc_deleter>;

using sys_seconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

// 9999-12-31T23:59:59Z. A larger "exp" would overflow system_clock's nanosecond time_point.
constexpr std::int64_t max_numeric_date = 253402300799;

// libjwt 1.10 decodes base64 leniently and splits on the first two dots only. A JWS is
// header.payload.signature in base64url; the signature may be empty here so that an
// alg "none" token is refused for its algorithm (an empty HS256 signature never verifies).
bool has_jws_shape(std::string_view token) {
  if (std::count(token.begin(), token.end(), '.') != 2) return false;
  const auto first = token.find('.');
  const auto second = token.find('.', first + 1);
  if (first == 0 || second == first + 1) return false;
  return std::all_of(token.begin(), token.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

// jwt_decode; an empty key parses without verifying anything. The handle is owned even
// when libjwt reports an error.
std::pair<int, jwt_ptr> decode(const std::string& token, std::string_view key) {
  jwt_t* raw = nullptr;
  const int rc = key.empty() ? jwt_decode(&raw, token.c_str(), nullptr, 0)
                             : jwt_decode(&raw, token.c_str(),
                                          reinterpret_cast<const unsigned char*>(key.data()),
                                          static_cast<int>(key.size()));
  return {rc, jwt_ptr(raw)};
}

bool non_empty_string_within(const rapidjson::Value& v, std::size_t max_bytes) {
  return v.IsString() && v.GetStringLength() > 0 && v.GetStringLength() <= max_bytes;
}

bool valid_properties(const std::vector<std::string>& properties) {
  return !properties.empty() && std::all_of(properties.begin(), properties.end(), [](auto& p) {
    return !p.empty() && p.size() <= max_property_id_bytes;
  });
}

boost::system::result<staff_claims, token_error> read_claims(
    const rapidjson::Document& doc, std::chrono::system_clock::time_point now) {
  const auto exp = doc.FindMember("exp");
  const auto sub = doc.FindMember("sub");
  const auto properties = doc.FindMember("properties");
  if (exp == doc.MemberEnd() || sub == doc.MemberEnd() || properties == doc.MemberEnd()) {
    return token_error::missing_claim;
  }
  // NumericDate may be fractional by RFC 7519; ours are whole seconds and nothing else mints.
  if (!exp->value.IsInt64() || exp->value.GetInt64() <= 0 ||
      exp->value.GetInt64() > max_numeric_date) {
    return token_error::bad_claim;
  }
  if (!non_empty_string_within(sub->value, max_subject_bytes)) return token_error::bad_claim;
  if (!properties->value.IsArray() || properties->value.Empty()) return token_error::bad_claim;

  staff_claims claims;
  claims.subject.assign(sub->value.GetString(), sub->value.GetStringLength());
  claims.properties.reserve(properties->value.Size());
  for (const auto& p : properties->value.GetArray()) {
    if (!non_empty_string_within(p, max_property_id_bytes)) return token_error::bad_claim;
    claims.properties.emplace_back(p.GetString(), p.GetStringLength());
  }
  claims.expires = sys_seconds(std::chrono::seconds(exp->value.GetInt64()));

  // RFC 7519: a present "nbf" must be honoured. gen-token never sets one.
  if (const auto nbf = doc.FindMember("nbf"); nbf != doc.MemberEnd()) {
    if (!nbf->value.IsInt64() || nbf->value.GetInt64() > max_numeric_date) {
      return token_error::bad_claim;
    }
    if (now < sys_seconds(std::chrono::seconds(nbf->value.GetInt64()))) {
      return token_error::bad_claim;
    }
  }
  if (now >= claims.expires) return token_error::expired;
  return claims;
}

}  // namespace

bool staff_claims::allows(std::string_view property_id) const {
  if (property_id.empty()) return false;
  return std::any_of(properties.begin(), properties.end(),
                     [&](const std::string& p) { return p == "*" || p == property_id; });
}

std::string_view describe(token_error e) {
  switch (e) {
    case token_error::missing:
      return "token missing";
    case token_error::malformed:
      return "token malformed";
    case token_error::bad_signature:
      return "token signature invalid";
    case token_error::wrong_algorithm:
      return "token algorithm not accepted (HS256 only)";
    case token_error::expired:
      return "token expired";
    case token_error::missing_claim:
      return "token lacks a required claim (sub, properties, exp)";
    case token_error::bad_claim:
      return "token claim invalid";
  }
  return "token invalid";
}

boost::system::result<staff_claims, token_error> verify_staff_token(
    std::string_view token, std::string_view secret, std::chrono::system_clock::time_point now) {
  if (token.empty()) return token_error::missing;
  if (token.size() > max_token_bytes || !has_jws_shape(token)) return token_error::malformed;
  // libjwt skips verification when given no key: an empty secret must never get that far.
  if (secret.empty() || secret.size() > static_cast<std::size_t>(INT_MAX)) {
    return token_error::bad_signature;
  }
  const std::string text(token);

  // Parsed without a key, libjwt checks the format only. That tells a token we never accept
  // ("alg" none, RS256, or "hs256", which libjwt itself would take for HS256) from one whose
  // signature is wrong. Nothing of this unverified parse is used beyond the header's "alg".
  {
    auto [rc, unverified] = decode(text, {});
    if (rc != 0 || !unverified) return token_error::malformed;
    const char* alg = jwt_get_header(unverified.get(), "alg");
    if (alg == nullptr || std::string_view(alg) != "HS256") return token_error::wrong_algorithm;
  }

  auto [rc, verified] = decode(text, secret);
  if (rc != 0 || !verified) return token_error::bad_signature;
  if (jwt_get_alg(verified.get()) != JWT_ALG_HS256) return token_error::wrong_algorithm;

  const c_string body(jwt_get_grants_json(verified.get(), nullptr));
  if (!body) return token_error::malformed;
  // The claims of a token whose signature holds, but bounded all the same (the secret may leak).
  rapidjson::Document doc;
  if (!json::parse(body.get(), doc, {.max_bytes = 64 * 1024, .max_depth = 8}) || !doc.IsObject())
    return token_error::malformed;
  return read_claims(doc, now);
}

std::string mint_staff_token(std::string_view secret, std::string_view subject,
                             const std::vector<std::string>& properties,
                             std::chrono::system_clock::time_point now, std::chrono::seconds ttl) {
  if (secret.empty() || secret.size() > static_cast<std::size_t>(INT_MAX)) {
    throw std::invalid_argument("the token secret must not be empty");
  }
  if (subject.empty() || subject.size() > max_subject_bytes) {
    throw std::invalid_argument("the subject must be 1 to " + std::to_string(max_subject_bytes) +
                                " bytes");
  }
  if (!valid_properties(properties)) {
    throw std::invalid_argument("properties must be a non-empty list of ids of 1 to " +
                                std::to_string(max_property_id_bytes) + " bytes, or \"*\"");
  }
  if (ttl <= std::chrono::seconds::zero()) {
    throw std::invalid_argument("the token lifetime must be positive");
  }
  const std::int64_t iat = std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
  if (iat <= 0 || ttl.count() > max_numeric_date - iat) {
    throw std::invalid_argument("the token would expire outside the years 1970 to 9999");
  }
  const std::int64_t exp = iat + ttl.count();

  rapidjson::StringBuffer json;
  json::writer w(json);
  w.StartObject();
  json::put(w, "sub", subject);
  w.Key("properties");
  w.StartArray();
  for (const auto& p : properties) json::write_string(w, p);
  w.EndArray();
  w.Key("iat");
  w.Int64(iat);
  w.Key("exp");
  w.Int64(exp);
  w.EndObject();

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) throw std::runtime_error("libjwt: cannot create a token");
  const jwt_ptr jwt(raw);
  if (jwt_set_alg(jwt.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                  static_cast<int>(secret.size())) != 0) {
    throw std::runtime_error("libjwt: cannot set HS256");
  }
  // jansson refuses invalid UTF-8 and NUL characters in strings.
  if (jwt_add_grants_json(jwt.get(), json.GetString()) != 0) {
    throw std::invalid_argument("the subject and property ids must be UTF-8 without NUL");
  }
  const c_string token(jwt_encode_str(jwt.get()));
  if (!token) throw std::runtime_error("libjwt: cannot encode the token");
  return std::string(token.get());
}

void throw_exception_from_error(token_error e, const boost::source_location& loc) {
  boost::throw_with_location(std::runtime_error(std::string(describe(e))), loc);
}

}  // namespace bellhop::contract
