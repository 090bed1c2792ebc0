#pragma once

// What every channel adapter speaks: a provider's webhook in, canonical guest messages and
// delivery statuses out; a canonical outbound message in, one provider HTTP call out and its
// answer classified. Nothing here does I/O: the gateway receives the webhooks, the outbound
// dispatcher makes the calls, so each adapter is pure functions that tests can feed directly.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bellhop/channels/message_template.hpp"

namespace bellhop::channels {

// A webhook as it arrived. Signatures cover the raw bytes, so nothing is decoded beforehand.
struct webhook {
  std::string method;                          // "GET", "POST"
  std::string target;                          // path and query exactly as received
  std::map<std::string, std::string> headers;  // names lower-case
  std::string body;

  const std::string* header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? nullptr : &it->second;
  }
};

// What an SMS says about further messages to its sender (Twilio's opt-out keywords): stop
// sending, start again, or send the help text.
enum class opt_out_action { stop, start, help };
const char* to_string(opt_out_action a) noexcept;  // "stop", "start", "help"

// A guest's message in the canonical inbound form (docs/http-api.md, body of /v1/messages/inbound),
// before Bellhop adds id, conversation_id, received_at and direction. `business` is the
// provider-side identity the guest wrote to (WhatsApp phone_number_id, Twilio "To" number):
// the gateway maps it to the property.
struct guest_message {
  std::string business;
  std::string channel;      // "whatsapp", "sms", "email", "webchat"
  std::string external_id;  // the provider's message id (dedup key)
  std::string from;         // the guest's address (E.164 for phones)
  std::string to;
  std::string guest_name;   // "" if unknown
  std::string text;         // "" if none (then attachments or location say what it is)
  std::string content_type = "text";  // text, image, audio, video, document, sticker, location…
  std::string attachments_json = "[]";  // JSON array of objects, e.g. [{"type":"image","id":…}]
  std::size_t attachment_count = 0;     // the objects in attachments_json
  std::string sent_at;                  // RFC 3339 or ""
  std::string metadata_json = "{}";     // JSON object: provider extras (location, context, …)
  // SMS: the opt-out keyword the message is (metadata_json says it too, for the engine).
  std::optional<opt_out_action> opt_out;
  // Set by the gateway, not an adapter: the text was cut to inbound.max_text_bytes (the
  // envelope's metadata says "text_truncated":true).
  bool text_truncated = false;
  // Set by the gateway, not an adapter: the account the message came to (the envelope's
  // "account"; "" = none).
  std::string account;
};

// A provider's delivery report for a message Bellhop sent.
struct status_update {
  std::string business;  // the provider-side identity that sent it, when the provider says
  std::string provider_message_id;
  std::string status;       // "sent", "delivered", "read", "failed"
  std::string recipient;    // the guest's address, if the provider says
  std::string error_code;   // provider's code when failed ("" otherwise)
  std::string error_reason; // provider's words when failed
  std::string timestamp;    // RFC 3339 or ""
};

// The verdict on a webhook. `status` is the HTTP status to answer when the webhook is refused
// (400 malformed, 401 bad signature, 403 wrong verify token, 413, 415, 422) with `error_code`
// and `error_message` for the JSON error body; 200 when accepted. `reply_body` is what to
// answer instead of the default (the WhatsApp GET challenge, Twilio's empty TwiML).
struct webhook_result {
  int status = 200;
  std::string error_code, error_message;
  std::string error_field;  // the field to blame, when one is ("" otherwise)
  std::string reply_body, reply_content_type;
  std::vector<guest_message> messages;
  std::vector<status_update> statuses;

  static webhook_result refuse(int status, std::string code, std::string message) {
    webhook_result r;
    r.status = status;
    r.error_code = std::move(code);
    r.error_message = std::move(message);
    return r;
  }
  bool accepted() const { return status == 200; }
};

// The canonical outbound message (docs/outbound.md) with the id Bellhop gave it.
struct outbound_message {
  std::string id;
  std::string property_id, channel, to, text, conversation_id, reply_to;
  // The account to send from (docs/outbound.md): as the message names it ("" = not named),
  // then, once the dispatcher picked one, that one's id.
  std::string account;
  std::string attachments_json = "[]";
  int priority = 5;
  // Channel extras: email subject / In-Reply-To / References, …
  std::map<std::string, std::string> extras;
  // WhatsApp: the template sent when there is no text or attachment, or in their place outside
  // the customer-service window.
  std::optional<message_template> template_msg;
  // When the guest last wrote in the message's conversation (epoch ms), as the dispatcher read
  // it when it took the message to send; unset when unknown or not read (channels without a
  // service window). Not part of the message's JSON.
  std::optional<std::int64_t> last_inbound_at;
};

// Whether `m` goes out as its template: it has one and neither text nor attachments.
bool sends_template(const outbound_message& m);

// One HTTP request to a provider.
struct http_call {
  std::string method = "POST";
  std::string url;  // absolute: base URL from config + path
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

// A provider's answer to a send, classified.
enum class send_outcome {
  sent,               // accepted: provider_message_id says which
  transient,          // retry with backoff (5xx, timeouts, throttling without a given delay)
  rate_limited,       // retry after retry_after (provider throttling of the sender)
  recipient_limited,  // this recipient only: delay sends to them by retry_after
  permanent,          // never retry: reason says why
  opted_out,          // the recipient opted out (SMS STOP): permanent, and later sends fail fast
};
const char* to_string(send_outcome o) noexcept;

struct send_result {
  send_outcome outcome = send_outcome::transient;
  std::string provider_message_id;
  std::string error_code;  // provider's code, "" if none
  std::string reason;      // human-readable, for the dead list and the failed event
  std::chrono::milliseconds retry_after{0};  // rate_limited / recipient_limited; 0 = backoff
};

// A provider's published rate limit, owned by its channel's adapter (the provider's documents
// are its source; docs/configuration.md, "Rate-limit policies"). Every configuration has it as
// a rate-limit policy of that name unless the file redefines it; the channel's sender passes
// each message through it.
struct published_limit {
  std::string_view name;       // the policy's name in ratelimit.policies
  std::string_view algorithm;  // fixed_window | sliding_window | gcra
  std::int64_t limit = 0;
  std::int64_t window_ms = 0;
  std::int64_t burst = 0;  // gcra only; 0 = limit
};

}  // namespace bellhop::channels
