#pragma once

#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

// Staff dashboard tokens: JWTs signed with HS256 and auth.jwt_secret (raw bytes of the
// string), claims {"sub", "properties", "iat", "exp"}. `bellhop gen-token` mints them, the
// WebSocket hub verifies them. Neither function logs; callers must never log a token or the
// secret either.

namespace bellhop::contract {

inline constexpr std::size_t max_token_bytes = 8192;      // longer tokens are malformed
inline constexpr std::size_t max_subject_bytes = 200;     // "sub"
inline constexpr std::size_t max_property_id_bytes = 64;  // each entry of "properties"

struct staff_claims {
  std::string subject;                            // "sub"
  std::vector<std::string> properties;            // "properties"; {"*"} = all
  std::chrono::system_clock::time_point expires;  // "exp" (seconds)

  // Whether the token covers this property: "*" is listed, or the id itself is.
  bool allows(std::string_view property_id) const;
};

enum class token_error {
  missing,          // no token, or an empty one
  malformed,        // not three base64url JSON parts, too long, an unknown "alg", bad JSON
  bad_signature,    // signature does not match the secret (or the secret is empty)
  wrong_algorithm,  // header "alg" is anything but exactly "HS256" ("none" included)
  expired,          // exp <= now
  missing_claim,    // no sub, properties or exp
  bad_claim,        // a claim of the wrong type or size, or an nbf still in the future
};

// Short text for error frames and log lines, e.g. "token expired".
std::string_view describe(token_error e);

// Verifies signature, algorithm and claims at time `now`. No leeway: a token is valid while
// now < exp (gen-token sets exp hours ahead, so a few seconds of clock skew between hosts
// cannot matter). An optional "nbf" claim is honoured the same way: valid once now >= nbf.
// An empty secret verifies nothing.
boost::system::result<staff_claims, token_error> verify_staff_token(
    std::string_view token, std::string_view secret, std::chrono::system_clock::time_point now);

// A token for `subject` covering `properties` ({"*"} = all), iat = now, exp = now + ttl
// (both in whole seconds). The inputs must follow the rules verify_staff_token checks
// (non-empty secret, sub 1..200 bytes, 1+ properties of 1..64 bytes, ttl > 0);
// otherwise throws std::invalid_argument with a message that never contains the secret.
std::string mint_staff_token(std::string_view secret, std::string_view subject,
                             const std::vector<std::string>& properties,
                             std::chrono::system_clock::time_point now, std::chrono::seconds ttl);

// Lets result<staff_claims, token_error>::value() throw (std::runtime_error with describe()).
[[noreturn]] void throw_exception_from_error(token_error e, const boost::source_location& loc);

}  // namespace bellhop::contract
