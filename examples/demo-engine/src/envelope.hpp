#pragma once

#include <boost/system/result.hpp>
#include <string>
#include <string_view>

namespace bellhop::demo {

// The fields of Bellhop's inbound envelope (the JSON on inbound:messages) that the demo engine
// uses. Everything else in the envelope is ignored.
struct envelope {
  std::string id;
  std::string property_id;
  std::string channel;
  std::string from;
  std::string conversation_id;
  std::string text;  // empty when the guest sent only attachments
  // "human" while the conversation is with staff: the demo stays silent then, but for the
  // FAQ answers it still suggests (Bellhop holds them for staff). "ai" otherwise (and when
  // absent, from a Bellhop older than conversation state).
  std::string conversation_mode = "ai";
};

// Parses and validates one element of inbound:messages. Elements come from Redis, so they are
// untrusted: anything malformed is an error (with the reason), never a crash.
boost::system::result<envelope, std::string> parse_envelope(std::string_view json);

// The canonical outbound JSON answering `in` with `text` (LPUSHed onto outbound:<channel>).
std::string make_reply(const envelope& in, std::string_view text);

// The hand-off of `in`'s conversation to staff (LPUSHed onto outbound:<channel>, docs/ai-engine.md,
// "Handing a conversation to staff"): no text, so nothing is sent to the guest; Bellhop sets the
// conversation's mode to human and tells the dashboards.
std::string make_handoff(const envelope& in);

}  // namespace bellhop::demo
