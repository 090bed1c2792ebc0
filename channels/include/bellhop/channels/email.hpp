#pragma once

// The email adapter: the inbound webhook (Bellhop's own provider-neutral JSON, signed with a
// shared secret: mail providers each post inbound mail in their own shape, so a small relay
// turns theirs into this one), the RFC 5322 reply that keeps the guest's thread, and the
// classification of an SMTP transfer. Pure functions: no I/O, no clock (the caller gives the
// Date), no libcurl (the transfer's codes are passed in as numbers).
//
// References: RFC 5322 (message format, Message-ID / In-Reply-To / References), RFC 2045
// (quoted-printable), RFC 2047 (encoded words in headers), RFC 5321 (SMTP reply codes).

#include <string>
#include <string_view>

#include "bellhop/channels/types.hpp"

namespace bellhop::channels::email {

struct settings {
  std::string webhook_secret;     // HMAC key of X-Bellhop-Signature; empty refuses every webhook
  std::string from_address;       // the hotel's address replies come from
  std::string from_name;          // its display name ("" = none)
  std::string message_id_domain;  // right-hand side of Message-IDs ("" = from_address's domain)
};

// The X-Bellhop-Signature value of a body: "sha256=" + lower-case hex HMAC-SHA256(secret,
// body). What a relay computes; parse_webhook checks it.
std::string signature(std::string_view secret, std::string_view body);

// POST /v1/webhooks/email: one email as JSON (docs/http-api.md, "Inbound email"). Checked in
// this order:
//   415 unsupported_media_type  Content-Type is not application/json (a UTF-8 charset is fine)
//   401 invalid_signature       X-Bellhop-Signature missing or not "sha256=" + the hex (any
//                               case) HMAC-SHA256 of the raw body, compared in constant time; or
//                               no webhook_secret configured
//   400 malformed_json          not JSON, not UTF-8, nested deeper than 16 levels, not an object
//   422 invalid_field           a field of the wrong JSON type (null counts as absent)
//   422 missing_field           message_id, from or to absent or empty
//   422 invalid_field           from or to not an address, message_id not one Message-ID, a
//                               subject or from_name with CR or LF or over 998 bytes, a
//                               references item not a string, an attachment not an object or
//                               its url not http(s)
//   422 missing_field           an attachment without url; no text and no attachment ("text")
// The 422s name the field in error_message ("from is required", "attachments[1].url …").
// Fields (all strings unless said):
//   message_id   required; the email's Message-ID, "<id@host>" (brackets added when missing):
//                no spaces or controls, at most 998 bytes
//   from, to     required; "ana@x.example", "<ana@x.example>" or "Ana Lima <ana@x.example>":
//                one '@', local part and domain not empty, no spaces or controls, at most 254
//                bytes
//   from_name    the guest's name; else the display name of `from`
//   subject, text, date (RFC 3339), in_reply_to (the first id in it is kept)
//   references   "<a> <b>" or ["<a>", "<b>"]; tokens that are no message id are skipped, and
//                when the ids pass 4000 bytes the first and the latest that fit are kept
//   attachments  [{filename, content_type, url}], url required and http(s)
// One guest_message: channel "email", external_id = message_id, business = to = the hotel
// address (bare, lower-case), from = the guest's bare address, lower-case, guest_name, text,
// sent_at = date when it is RFC 3339 (else ""), attachments_json [{"type": "image" | "audio" |
// "video" | "document" (from content_type), "filename" (null when absent), "mime_type"
// (application/octet-stream when absent), "url"}], content_type "text", or the first
// attachment's type when there is no text; metadata_json {"subject" (always, "" when none),
// "message_id", "in_reply_to" and "references" (when there are any)}.
webhook_result parse_webhook(const settings& s, const webhook& w);

// What a reply needs of the guest's email it answers ("" for what it lacks): its subject,
// Message-ID and References, as the inbound metadata kept them.
struct thread_info {
  std::string subject, message_id, references;
};

// A reply ready for SMTP: the envelope and the message (CRLF line ends; dot-stuffing is the
// SMTP client's job).
struct mail {
  std::string envelope_from, envelope_to, message_id, data;
};

// build_mail's answer: `m` when ok, else `error` says why the reply can never be sent (the
// caller fails the message as permanent with that reason).
struct built_mail {
  bool ok = false;
  std::string error;
  mail m;
};

// The reply to `t`, headers in this order (each line within 78 characters where a space allows
// a fold, never past 998):
//   From          from_name <from_address>, the name RFC 2047-encoded when not ASCII, quoted
//                 when it holds specials; just the address when from_name is ""
//   To            the bare m.to (a "Name <addr>" is accepted), lower-case
//   Subject       extras["subject"] when set; else "Re: " + t.subject (not doubled when it
//                 starts with "Re:" in any case); else "Your message". RFC 2047 "B" words of at
//                 most 75 characters, one per folded line, when not ASCII
//   Date          `date` as given (RFC 5322 text: this code has no clock)
//   Message-ID    <m.id@message_id_domain>, or <m.id@domain of from_address>; the
//                 provider_message_id the caller records
//   In-Reply-To   t.message_id            } only when t.message_id is set
//   References    t.references + " " + t.message_id }
//   MIME-Version: 1.0, Content-Type: text/plain; charset=utf-8, Content-Transfer-Encoding:
//   quoted-printable. No Auto-Submitted: replies are written by staff.
// The body is m.text in quoted-printable (LF becomes CRLF), then one line per attachment of
// m.attachments_json with a url ("filename: url"): this adapter sends no MIME attachments.
// Refused: from_address or m.to not an email address, an m.id or message_id_domain that cannot
// make a Message-ID, a CR or LF in a header value (header injection), a header past 998 bytes.
built_mail build_mail(const settings& s, const outbound_message& m, const thread_info& t,
                      std::string_view date);

// Classifies a transfer: `curl_code` is libcurl's CURLcode (0 = done), `smtp_code` the server's
// last reply code (CURLINFO_RESPONSE_CODE, 0 = none), `error_text` libcurl's error buffer.
//   done, with a 2xx reply or none           sent, provider_message_id = message_id
//   a 4xx reply (421, 450, 451, 452, 454, …) transient      } error_code = the reply code,
//   530, 534, 535, 538                       permanent, the  } reason "SMTP <code>: <text>"
//                                            reason says authentication failed
//   another 5xx reply (550, 553, 554, …)     permanent      }
//   no reply code, and curl says:
//     67 login denied, 94 auth error         permanent (authentication)
//     64 no STARTTLS                         permanent (mail never goes in plain text)
//     60, 77, 58 certificate                 permanent
//     1, 3 unusable smtp_url                 permanent
//     6, 7, 28, 35, 52, 55, 56, anything else  transient (DNS, connection, timeout, TLS
//                                            handshake, transfer), reason names the curl code
send_result interpret_send(int curl_code, long smtp_code, std::string_view error_text,
                           const std::string& message_id);

// Email per property (what a mailbox provider lets one sender do without being throttled or
// marked as spam): 20 per minute, 1,000 per hour, 10,000 per day.
inline constexpr published_limit property_limits[] = {
    {"email_property_minute", "sliding_window", 20, 60'000},
    {"email_property_hour", "fixed_window", 1000, 3'600'000},
    {"email_property_day", "fixed_window", 10'000, 86'400'000}};
inline constexpr const published_limit (&published_limits)[3] = property_limits;

}  // namespace bellhop::channels::email
