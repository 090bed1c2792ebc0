#include "bellhop/broker/error.hpp"

#include <hiredis/hiredis.h>

#include <string>

namespace bellhop::broker {
namespace {

class category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "bellhop.broker"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok: return "ok";
      case errc::not_connected: return "not connected to Redis";
      case errc::connection_lost: return "connection to Redis lost";
      case errc::timeout: return "Redis command timed out";
      case errc::redis_error: return "Redis returned an error";
      case errc::protocol_error: return "Redis protocol error";
      case errc::shutting_down: return "broker is shutting down";
      case errc::auth_failed: return "Redis refused the connection handshake";
      case errc::invalid_argument: return "invalid Redis command";
    }
    return "unknown broker error";
  }
};

}  // namespace

const boost::system::error_category& broker_category() noexcept {
  static const category instance;
  return instance;
}

bool is_out_of_memory(std::string_view redis_error) noexcept {
  return redis_error.starts_with("OOM ");
}

errc from_hiredis_error(int hiredis_err) noexcept {
  switch (hiredis_err) {
    case REDIS_OK: return errc::ok;
    case REDIS_ERR_PROTOCOL: return errc::protocol_error;
    case REDIS_ERR_OOM: return errc::protocol_error;
    case REDIS_ERR_IO:
    case REDIS_ERR_EOF:
    case REDIS_ERR_OTHER:
    default: return errc::connection_lost;
  }
}

}  // namespace bellhop::broker
