#pragma once

// The WhatsApp Cloud API (Meta Graph API) adapter: webhook verification and parsing, the send
// request, and the classification of its answer. Pure functions: no I/O, no clock.
//
// Meta references (developers.facebook.com/documentation/business-messaging/whatsapp/):
//   webhooks/reference/messages/*  payload shapes (text, image, location, status, …)
//   support/error-codes            error codes and what to do about them
//   messages/*-messages            send request bodies
//   business-scoped-user-ids       usernames: the BSUID fields of webhooks and sends

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"

namespace bellhop::channels::whatsapp {

struct settings {
  std::string app_secret;       // verifies X-Hub-Signature-256; empty refuses every POST
  std::string verify_token;     // answers the GET subscription challenge; empty refuses it
  std::string access_token;     // Graph API bearer token for sends
  std::string phone_number_id;  // the business number messages are sent from
  std::string api_base_url;     // e.g. "https://graph.facebook.com/v21.0"
};

// JSON deeper than this is refused before RapidJSON (a recursive parser) sees it.
inline constexpr int max_json_depth = 32;

// GET /v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…
// 200 with reply_body = the (percent-decoded) challenge as text/plain when the mode is
// "subscribe" and the token matches settings.verify_token (compared in constant time);
// 403 "forbidden" for a wrong token or when settings.verify_token is empty;
// 400 "invalid_verification" when the mode is missing or not "subscribe", or the token or the
// challenge is missing (or the challenge is longer than 1024 bytes).
webhook_result verify_subscription(const settings& s, const webhook& w);

// True when `header_value` is "sha256=" followed by the hex HMAC-SHA256 of `body` keyed with
// `app_secret` (either case of hex), compared in constant time. An empty secret never matches.
bool signature_valid(std::string_view app_secret, std::string_view body,
                     std::string_view header_value);

// POST /v1/webhooks/whatsapp. Checked in this order:
//   401 invalid_signature       X-Hub-Signature-256 missing or wrong (or no app_secret)
//   415 unsupported_media_type  Content-Type is not application/json (a charset other than
//                               UTF-8 is refused too)
//   400 malformed_json          not JSON, not UTF-8, or nested deeper than max_json_depth
//   422 invalid_payload         not {"object":"whatsapp_business_account","entry":[…]}, or an
//                               item that Bellhop cannot take whole (a message without id,
//                               with neither from nor from_user_id, with a from that is not
//                               digits, or with only a from_user_id that is not a BSUID; a
//                               status without id or status, …)
// Accepted posts yield every message and status of every entry and change whose field is
// "messages" (other fields are ignored). Per message: business = metadata.phone_number_id,
// to = "+" + metadata.display_phone_number digits, from = "+" + from, or, when Meta withholds
// the phone of a guest who adopted a WhatsApp username, the business-scoped user id
// from_user_id as it came (a BSUID: two capital letters, '.', an optional "ENT.", 1 to 128
// letters and digits, e.g. "US.13491208655302741918"); guest_name from the contact with the
// same wa_id or user_id, sent_at = timestamp as RFC 3339 UTC. metadata carries
// "whatsapp_user_id" (from_user_id), "whatsapp_parent_user_id" (from_parent_user_id, else the
// contact's parent_user_id) when they are BSUIDs and "whatsapp_username" (the contact's
// profile.username) when Meta sends them. content_type and text:
//   text                  "text", text.body
//   image, audio, video,  the type, caption (if any); attachments_json =
//   document, sticker     [{"type","id","mime_type","sha256","filename"?,"voice"?,"animated"?}]
//   location              "location", "Location: <lat>, <lon> (<name or address>)";
//                         metadata {"location":{"latitude","longitude","name"?,"address"?}}
//   interactive           "interactive", the button_reply / list_reply title;
//                         metadata {"interactive":{"type","id"}}
//   button                "button", button.text; metadata {"button":{"payload"}}
//   reaction              "reaction", the emoji ("" when removed); metadata {"message_id"}
//   anything else         "unsupported", ""; metadata {"whatsapp_type": <type>}
// and metadata {"context_message_id"} when the guest replied to a message. Statuses sent,
// delivered, read and failed are taken (others ignored), with errors[0] when failed (its code,
// and "title: details" as the reason, but "outside_service_window" for 131047); recipient
// = "+" + recipient_id, or recipient_user_id when a send to a BSUID came without the phone;
// business = the change's metadata.phone_number_id (the number that sent it).
webhook_result parse_webhook(const settings& s, const webhook& w);

// Why `to` can receive no WhatsApp message ("" when it can): it must be a phone number
// ("+49 151 1234-5678") or a BSUID. The sender fails such a message at once, without a call.
std::string recipient_error(std::string_view to);

// WhatsApp's customer-service window (docs/outbound.md, "WhatsApp's customer-service window"):
// a free-form message (text, attachments) reaches a guest only within `window_ms` of the
// guest's last message (Meta: 24 hours); outside it only a template does. Decides, when the
// dispatcher takes `m` to send at `now_ms` (epoch ms), from m.last_inbound_at (unset: no known
// conversation, so outside):
//   a template-only message (no text, no attachments)   sent as it is (nullopt)
//   inside the window                                   sent as it is (nullopt)
//   outside, with a template                            nullopt, m made template-only (its
//                                                       text and attachments dropped)
//   outside, without a template                         permanent, error_code and reason
//                                                       "outside_service_window": no call
std::optional<send_result> admit(outbound_message& m, std::int64_t now_ms, std::int64_t window_ms);

// POST {api_base_url}/{phone_number_id}/messages with the bearer token. When
// sends_template(m): the template message
//   {"messaging_product":"whatsapp","recipient_type":"individual","to":…,"type":"template",
//    "template":{"name":…,"language":{"code":…},"components":[…]}} (components when any).
// Otherwise a text message, unless
// attachments_json holds an object whose "type" is image, audio, video or document with an
// "id" (WhatsApp media id, preferred) or a "url" (sent as "link"): then that media message,
// with the text as its caption (an audio message has none: audio with a text goes as a
// document, so the text is not lost); every other attachment with a "url" goes as a line
// under the text ("filename: url"). The guest goes in "to" (its digits)
// when m.to is a phone number ("+49 151 1234-5678"), in "recipient" when it is a BSUID (a guest
// known only by it), and as it came in "to" otherwise (recipient_error refuses it first).
http_call send_request(const settings& s, const outbound_message& m);

// Classifies the Graph API's answer to send_request. `headers` names are lower-case.
//   2xx with messages[0].id                   sent
//   error 130429 (throughput)                 rate_limited, Retry-After or 1 s
//   error 4, 80007 (app / account API limits) rate_limited, Retry-After or 60 s
//   error 131056 (pair rate limit)            recipient_limited, Retry-After or 6 s
//   error 131047 (24-hour window closed)      permanent, reason "outside_service_window"
//   error 131026 (undeliverable), 130472
//   (Meta experiment)                         permanent
//   error 2, 131000 (Meta: try again)         transient
//   HTTP 429 with another code                rate_limited, Retry-After or 1 s
//   other 4xx with a Graph error body         permanent, the provider's message
//   5xx, 408, a 2xx without an id, a body
//   that is not a Graph error, anything else  transient
send_result interpret_send(int http_status, std::string_view body,
                           const std::map<std::string, std::string>& headers);

// WhatsApp Cloud API: 80 messages/s per business phone number (error 130429 beyond), and the
// pair rate: about 1 message per 6 s to one user, with a small burst (error 131056).
inline constexpr published_limit business_number_limit{"whatsapp_business_number", "gcra", 80,
                                                       1000, 80};
inline constexpr published_limit recipient_limit{"whatsapp_recipient", "gcra", 1, 6000, 3};
inline constexpr published_limit published_limits[] = {business_number_limit, recipient_limit};

}  // namespace bellhop::channels::whatsapp
