#pragma once

// The Twilio Programmable Messaging (SMS/MMS) adapter: webhook verification and parsing, the
// send request, and the classification of its answer. Pure functions: no I/O, no clock.
//
// Twilio references (twilio.com/docs/…):
//   usage/webhooks/webhooks-security       X-Twilio-Signature
//   messaging/guides/webhook-request       incoming message parameters
//   messaging/api/message-resource         send parameters, statuses, status callbacks
//   messaging/tutorials/advanced-opt-out   default opt-out / opt-in / help keywords
//   api/errors                             error codes

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bellhop/channels/types.hpp"

namespace bellhop::channels::twilio {

struct settings {
  std::string account_sid;   // AC…; webhooks from another account are refused
  std::string auth_token;    // signs API calls, verifies webhooks; empty refuses every webhook
  std::string from;          // sender: a number (+1…) or a messaging service SID (MG…)
  std::string api_base_url;  // e.g. "https://api.twilio.com"
  std::string public_url;    // as Twilio sees Bellhop, no trailing slash; empty refuses webhooks
};

// The X-Twilio-Signature for a request: base64(HMAC-SHA1(auth_token, full_url + name + value
// of every parameter, sorted by name and then by value)). `full_url` is scheme to query.
std::string signature(std::string_view auth_token, std::string_view full_url,
                      std::vector<std::pair<std::string, std::string>> params);

// True when `header_value` is signature(auth_token, full_url, params), compared in constant
// time. An empty auth_token never matches.
bool signature_valid(std::string_view auth_token, std::string_view full_url,
                     const std::vector<std::pair<std::string, std::string>>& params,
                     std::string_view header_value);

// Both webhooks are checked in this order:
//   415 unsupported_media_type  Content-Type is not application/x-www-form-urlencoded (a
//                               charset other than UTF-8 is refused too)
//   400 malformed_form          a bad %-escape
//   400 invalid_utf8            a name or value that is not UTF-8 after %-decoding
//                               (error_field names the field when its name is valid)
//   401 invalid_signature       X-Twilio-Signature missing or wrong, or no auth_token or
//                               public_url configured. The URL signed is public_url + target;
//                               like Twilio's own helper libraries, the same URL with the
//                               default port added (or its port removed) is accepted too,
//                               since Twilio signs either form.
//   403 forbidden               AccountSid is missing or not settings.account_sid
//   422 missing_field           a required parameter is absent or empty (error_message names
//                               it)
//   422 invalid_field           NumMedia is not a number of at most 3 digits
//
// POST /v1/webhooks/twilio/sms: MessageSid, From, To, and Body or NumMedia > 0 required (with
// MediaUrl{i} and MediaContentType{i} for every i < NumMedia). One guest_message: business and
// to = To, channel "sms", external_id = MessageSid, from = From, text = Body, attachments_json
// [{"type":"image"|"audio"|"video"|"document","url","mime_type"}], content_type the first
// attachment's type or "text"; metadata_json {"num_segments":N} when NumSegments is given and
// {"opt_out":"stop"|"start"|"help"} (and opt_out set alike) from OptOutType, or else when the
// whole Body (trimmed, any case) is one of Twilio's default keywords. reply_body is an empty
// TwiML <Response>.
webhook_result parse_sms_webhook(const settings& s, const webhook& w);

// POST /v1/webhooks/twilio/status: MessageSid and MessageStatus required. sent, delivered and
// read give a status_update of that name; undelivered and failed give "failed" with error_code
// = ErrorCode and error_reason from error_description(). Other statuses (queued, accepted,
// sending, scheduled, canceled, …) are accepted without an update. recipient = To.
webhook_result parse_status_webhook(const settings& s, const webhook& w);

// A few words for a Twilio error code ("unreachable destination handset"), "error <code>" for
// a code not in Bellhop's table.
std::string error_description(std::string_view code);

// POST {api_base_url}/2010-04-01/Accounts/{account_sid}/Messages.json with Basic auth, the form
// To, From (or MessagingServiceSid when the sender is an MG… SID; extras["from"] overrides
// settings.from), Body (left out when empty and there is media), MediaUrl for every attachment
// with a "url", and StatusCallback = public_url + "/v1/webhooks/twilio/status" when public_url
// is set.
http_call send_request(const settings& s, const outbound_message& m);

// Classifies the API's answer to send_request. `headers` names are lower-case.
//   2xx with "sid"                              sent
//   error 20429, or HTTP 429                    rate_limited, Retry-After (seconds, at most
//                                               3600) or 1 s
//   error 21610 (recipient replied STOP)        opted_out
//   other 4xx with an error body, or a known
//   permanent code (21211, 21612, 21614, …)     permanent, Twilio's message and code
//   5xx, 408, a 2xx without "sid", a body that
//   is not Twilio JSON, anything else           transient
send_result interpret_send(int http_status, std::string_view body,
                           const std::map<std::string, std::string>& headers);

// Twilio: 1 SMS/s per long-code sender (more is queued, then refused), 15 messages per 30 s to
// one recipient from one sender; and per property (a hotel's own cap on SMS costs): 10 per
// minute, 500 per hour, 5,000 per day.
inline constexpr published_limit sender_limit{"twilio_sms_sender", "gcra", 1, 1000, 1};
inline constexpr published_limit recipient_limit{"twilio_sms_recipient", "sliding_window", 15,
                                                 30'000};
inline constexpr published_limit property_limits[] = {
    {"sms_property_minute", "sliding_window", 10, 60'000},
    {"sms_property_hour", "fixed_window", 500, 3'600'000},
    {"sms_property_day", "fixed_window", 5000, 86'400'000}};
inline constexpr published_limit published_limits[] = {sender_limit, recipient_limit,
                                                       property_limits[0], property_limits[1],
                                                       property_limits[2]};

}  // namespace bellhop::channels::twilio
