#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"

namespace bellhop::gateway {

// An outbound message as Bellhop files it: the canonical outbound JSON (docs/outbound.md) with its id
// and priority first, defaults filled in.
struct normalized_outbound {
  std::string json;  // "" until written (read_outbound leaves it so)
  channels::outbound_message msg;
  std::string idempotency_key, created_at;
  std::string sent_by;  // a staff reply's author, kept in the filed JSON
  // Who wrote it: "ai" (an engine; the default, absent from the filed JSON) or "staff". An
  // "ai" reply to a conversation with staff is held, not sent (docs/outbound.md).
  std::string source = "ai";
  // An engine's handoff carried by the element (docs/ai-engine.md): the conversation goes to
  // staff when the intake files it. A handoff alone (no text, no attachments) sends nothing.
  struct handoff_request {
    std::string reason;
    std::string confidence;  // a JSON number from 0 to 1, "" none
  };
  std::optional<handoff_request> handoff;
  // Whether there is a message to send (false: a handoff only).
  bool has_message() const {
    return !msg.text.empty() || msg.attachments_json != "[]" || msg.template_msg.has_value();
  }
  std::int64_t delay_ms = 0;
  // Why normalize_outbound refused it, as the poison metric names it: bellhop::json's error
  // ("too_large", "too_deep", "invalid_utf8", "syntax"), "not_object", or "invalid" (a field).
  std::string_view refused = {};
  // The field at fault when one can be named ("template.name", …), else "".
  std::string refused_field;
};
// The largest element of an outbound list Bellhop reads (POST bodies are bounded by
// http.max_body_bytes instead).
inline constexpr std::size_t max_outbound_element_bytes = 1 << 20;
// Reads one element of outbound:<channel> (or a POST /v1/messages/outbound body): "" when it
// is a message Bellhop can send, else why not. An `id` of Bellhop's form is kept (a message
// that comes back after a crash, a staff reply, a client's own choice); otherwise a new one is
// given. A kept id never overwrites another message's record (docs/outbound.md). The text goes
// through bellhop::json::parse (at most `max_bytes`, 32 levels).
std::string normalize_outbound(std::string_view raw, std::string_view channel,
                               normalized_outbound& out,
                               std::size_t max_bytes = max_outbound_element_bytes);
// The same, without writing `out.json`: for a filed message read back to be sent, whose JSON
// is already the one filed.
std::string read_outbound(std::string_view raw, std::string_view channel, normalized_outbound& out,
                          std::size_t max_bytes = max_outbound_element_bytes);
// A message Bellhop builds itself (a staff reply), already typed: checked by the same rules as
// an element (a channel left empty is `channel`'s), given an id unless it has one of Bellhop's
// form and a created_at unless it has one, and written to `out.json` as normalize_outbound
// writes the element with these fields.
std::string file_outbound(normalized_outbound& out, std::string_view channel);
// The conversation a message belongs to, as its record names it: its conversation_id when it
// is one of Bellhop's (c_ and 32 hex digits), else the one Bellhop derives for its property,
// channel and guest (as core/src/inbound_message.cpp does for the guest's messages). Held
// replies and WhatsApp's service window are decided by this conversation.
std::string conversation_of(const channels::outbound_message& m);
// What a message:<id> record keeps of the message filed under its id (the digest of its
// normalized JSON): the intake files an element under an existing record only when it is the
// same message (recovered, or retried from the dead letters), so a client-chosen id never
// takes over another message's record.
std::string outbound_digest(std::string_view normalized_json);

}  // namespace bellhop::gateway
