#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <functional>
#include <string>

#include "bellhop/contract/keys.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// The console's sessions in Redis (docs/redis-keys.md, "Console"): created at sign-in, looked
// up with their user's role, properties and disabled flag in one EVALSHA, ended at sign-out.
// Redis holds a session under the SHA-256 of its cookie, never the cookie itself.
class session_store {
 public:
  session_store(const services& svc, contract::key_space keys, int ttl_s);

  // The session id of a cookie value: the first 32 hex digits of its SHA-256.
  static std::string session_id(std::string_view cookie);

  // server/staff_auth.hpp's session_lookup: calls back once, on Asio's system executor (the
  // lookup has no executor of its own, and that one outlives every store and broker).
  void lookup(const std::string& cookie, session_callback done);

  struct created {
    session_status status = session_status::unavailable;  // none: the user is gone or disabled
    std::string cookie;                                   // the new cookie's value
    staff_principal principal;
  };
  // A new session for `user` (whose password was just checked); `done` runs on `ex`.
  void create(const std::string& user, boost::asio::any_io_executor ex,
              std::function<void(created)> done);
  // Ends the cookie's session (if any) and publishes it on console:revoked; `done(true)` once
  // Redis answered, on `ex`.
  void end(const std::string& cookie, boost::asio::any_io_executor ex,
           std::function<void(bool)> done);

  int ttl_s() const { return ttl_s_; }

 private:
  const services& svc_;
  const contract::key_space keys_;
  const int ttl_s_;
  broker::script create_, lookup_, end_;
};

}  // namespace bellhop::gateway
