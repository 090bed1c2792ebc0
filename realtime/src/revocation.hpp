#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace bellhop::realtime {

// A message on the console's revocation channel (contract::key_space::console_revoked,
// docs/realtime.md "Ending a console session"): every session of `user` ended (disabled, new
// password), or the one session `session_id` (sign-out). Exactly one of them is set.
struct revocation {
  std::string user;
  std::string session_id;
};

// `{"user":"<name>"}` or `{"session":"<session_id>"}`, read with bellhop::json's limits (at
// most 1 KiB, 4 levels, UTF-8). Anything else (malformed, both or neither member, a member that
// is not a non-empty string of at most 200 bytes) is nullopt: the publisher is another process,
// and a bad message ends nothing.
std::optional<revocation> parse_revocation(std::string_view payload);

}  // namespace bellhop::realtime
