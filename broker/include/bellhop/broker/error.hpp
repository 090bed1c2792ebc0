#pragma once

#include <boost/system/error_code.hpp>
#include <string_view>

namespace bellhop::broker {

// Every failure the broker reports. hiredis error codes are mapped onto these in one place
// (from_hiredis_error) so callers never see hiredis internals.
enum class errc {
  ok = 0,
  not_connected = 1,    // no usable connection right now (reconnecting with backoff)
  connection_lost = 2,  // the connection dropped while the command was in flight
  timeout = 3,          // no reply within the command timeout
  redis_error = 4,      // Redis answered with an error reply (the reply holds its text)
  protocol_error = 5,   // hiredis could not parse what Redis sent
  shutting_down = 6,    // the broker is stopping
  auth_failed = 7,      // AUTH/SELECT/handshake refused
  invalid_argument = 8, // the command could not be encoded
};

const boost::system::error_category& broker_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), broker_category()};
}

// Whether an error text from Redis (an error reply, or an error a script caught with pcall and
// handed back) is Redis refusing a write because it reached maxmemory ("OOM command not
// allowed..."): the one place that recognises a full Redis.
bool is_out_of_memory(std::string_view redis_error) noexcept;

// Maps a hiredis REDIS_ERR_* code to a broker error.
errc from_hiredis_error(int hiredis_err) noexcept;

}  // namespace bellhop::broker

template <>
struct boost::system::is_error_code_enum<bellhop::broker::errc> : std::true_type {};
