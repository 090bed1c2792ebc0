#pragma once

// The longest id-like value Bellhop takes from a client, an adapter, an engine or Redis, in
// bytes. One table, so a limit is the same on every way in (docs/http-api.md, "Id limits");
// an id over its limit is refused where it enters, and never echoed back in an error.

#include <cstddef>

namespace bellhop::contract::id_limits {

inline constexpr std::size_t property_id = 64;      // and only A-Z a-z 0-9 - _ .
inline constexpr std::size_t channel = 32;          // whatsapp, sms, email, webchat
inline constexpr std::size_t conversation_id = 34;  // exactly: "c_" + 32 lowercase hex
inline constexpr std::size_t message_id = 64;       // Bellhop's own are 26 (ULID)
// The conversation_id an engine gives an outbound message (free-form: usually a Bellhop one).
inline constexpr std::size_t outbound_conversation_id = 64;
// A provider's message id. Webhooks hash a longer one to "sha256:<hex>" instead of refusing it
// (an email Message-ID may take 998 bytes); the API refuses it.
inline constexpr std::size_t external_id = 256;
inline constexpr std::size_t address = 320;           // from / to: phone number, e-mail address
inline constexpr std::size_t reply_to = 998;          // a provider id or an email Message-ID
inline constexpr std::size_t idempotency_key = 256;   // outbound
inline constexpr std::size_t client_msg_id = 128;     // a dashboard's staff reply
inline constexpr std::size_t webchat_client_id = 64;  // a web chat guest's message
inline constexpr std::size_t consumer_name = 200;     // an AI engine's, read from Redis

}  // namespace bellhop::contract::id_limits
