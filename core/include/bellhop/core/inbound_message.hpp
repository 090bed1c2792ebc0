#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"
#include "bellhop/contract/id_limits.hpp"

namespace bellhop::gateway {

// Why a request body is refused: HTTP status, error code and the offending field, as the
// error body of docs/http-api.md reports them.
struct validation_error {
  int status = 422;
  std::string code;
  std::string message;
  std::string field;
};

// Byte limits of canonical fields that no configuration changes.
inline constexpr std::size_t max_external_id_bytes = contract::id_limits::external_id;
inline constexpr std::size_t max_guest_name_bytes = 200;

struct inbound_limits {
  std::size_t max_text_bytes = 16384;
  std::size_t max_depth = 16;        // nesting of arrays/objects in the whole body
  std::size_t max_attachments = 10;
  std::size_t max_metadata_bytes = 8192;
  std::size_t max_body_bytes = 1048576;  // http.max_body_bytes for request bodies
};

// A validated guest message, enriched and serialized once.
struct inbound_message {
  std::string id;
  std::string property_id;
  std::string channel;
  std::string external_id;
  std::string conversation_id;
  std::string from;        // the guest's address
  std::string account;     // the account the guest wrote to ("" if not given)
  std::string guest_name;  // "" if not given
  std::string received_at;
  std::int64_t received_ms = 0;  // received_at as epoch milliseconds
  std::string envelope;  // the JSON pushed to inbound:messages
};

// Channels a message may come from.
bool is_known_channel(std::string_view channel);

// Parses and validates the canonical inbound message (docs/http-api.md) and builds the envelope that
// goes to inbound:messages: the client's fields in canonical order plus id, conversation_id,
// received_at and direction. Never throws on bad input.
boost::system::result<inbound_message, validation_error> parse_inbound_message(
    std::string_view body, const inbound_limits& limits,
    std::chrono::system_clock::time_point now);

// The same message already typed, from a channel adapter (a webhook, a web-chat frame), for
// `property_id`: checked by the same rules with the same errors and written into the same
// envelope as a body with these fields, without JSON text in between. Empty `to`, `guest_name`
// and `sent_at` are absent (null in the envelope); `text_truncated` puts
// "text_truncated":true first in the metadata. Never throws on bad input.
boost::system::result<inbound_message, validation_error> validate_inbound_message(
    const channels::guest_message& g, std::string_view property_id, const inbound_limits& limits,
    std::chrono::system_clock::time_point now);

}  // namespace bellhop::gateway
