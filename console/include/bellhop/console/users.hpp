#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"

// The console's accounts (docs/console.md, "Sign-in"): what a user name, a role, a property list
// and a password may be, the password hash (libsodium's Argon2id), and the account changes of
// `bellhop user …`, each one Lua script (console/lua/user_*.lua).

namespace bellhop::gateway {

inline constexpr std::size_t max_user_name_bytes = 64;
inline constexpr std::size_t min_password_bytes = 10;
inline constexpr std::size_t max_password_bytes = 1024;
inline constexpr std::size_t max_user_properties = 256;

// 1-64 of A-Z a-z 0-9 . _ - @ (no ':', which separates the parts of a key name).
bool is_user_name(std::string_view s);
// "staff" or "admin".
bool is_role(std::string_view s);
// Why a password cannot be used ("" if it can): 10 to 1024 bytes, no NUL.
std::string check_password(std::string_view password);

// The Argon2id string of `password` (libsodium crypto_pwhash_str, OPSLIMIT/MEMLIMIT_INTERACTIVE:
// about 64 MiB and a tenth of a second; see docs/console.md), or nullopt when libsodium fails
// (out of memory). Blocks: never call it on a network thread.
std::optional<std::string> hash_password(std::string_view password);
// Whether `password` matches the Argon2id string `stored` (constant time; false for a
// malformed `stored`). Blocks like hash_password.
bool verify_password(std::string_view stored, std::string_view password);

// Overwrites a password's bytes (sodium_memzero: not optimized away) once it is no longer needed.
void wipe(std::string& secret) noexcept;

// A property list as stored: a JSON array of ids, or ["*"] for all.
std::string properties_json(const std::vector<std::string>& properties);
// The list back from its stored JSON; nullopt when it is not an array of ids or "*" (bounded).
std::optional<std::vector<std::string>> parse_properties(std::string_view json);

struct user_record {
  std::string name;
  std::string role;
  std::vector<std::string> properties;
  bool disabled = false;
  std::int64_t created_at = 0;  // epoch ms
};

// The account changes of the CLI, on one broker. Handlers run on `ex` with "" or the one-line
// reason it failed ("unknown user 'x'", "user 'x' exists", or Redis's error).
class user_store {
 public:
  user_store(broker::broker& redis, contract::key_space keys);

  using done_handler = std::function<void(std::string error)>;
  using list_handler = std::function<void(std::string error, std::vector<user_record>)>;

  // `hash` is hash_password's string; role and properties are checked by the caller.
  void add(const std::string& name, const std::string& hash, const std::string& role,
           const std::vector<std::string>& properties, boost::asio::any_io_executor ex,
           done_handler done);
  void list(boost::asio::any_io_executor ex, list_handler done);
  // Disabling ends every session of the user at once (and publishes it).
  void set_disabled(const std::string& name, bool disabled, boost::asio::any_io_executor ex,
                    done_handler done);
  // A new password ends every session of the user at once (and publishes it).
  void set_password(const std::string& name, const std::string& hash,
                    boost::asio::any_io_executor ex, done_handler done);

 private:
  void change(const std::string& op, const std::string& name, const std::string& hash,
              boost::asio::any_io_executor ex, done_handler done);

  broker::broker& redis_;
  contract::key_space keys_;
  broker::script add_, change_, list_;
};

}  // namespace bellhop::gateway
