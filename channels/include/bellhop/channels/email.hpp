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

// The X-Bellhop-Signature value of a body: "sha256=" + hex HMAC-SHA256(secret, body).
std::string signature(std::string_view secret, std::string_view body);

// POST /v1/webhooks/email: one email as JSON. Checked in this order:
//   415 unsupported_media_type  Content-Type is not application/json (UTF-8)
//   401 invalid_signature       X-Bellhop-Signature missing or wrong, or no webhook_secret
//   400 malformed_json          not JSON, nested too deep, or not an object
//   422 missing_field           message_id, from, to, or both text and attachments missing
//                               (error_message names the field)
//   422 invalid_field           a field of the wrong type, an address that is not one, a
//                               header value with CR or LF, an attachment without "url"
// Fields: message_id (angle brackets added when missing), from ("ana@x.example" or
// "Ana <ana@x.example>"), from_name, to, subject, text, attachments [{filename, content_type,
// url}], in_reply_to, references (a string of ids or an array of them), date (RFC 3339).
// One guest_message: channel "email", external_id = message_id, business = to = the hotel
// address (bare, lower-case), from = the guest's bare address, lower-case, guest_name =
// from_name or the display name of `from`, sent_at = date when RFC 3339, attachments_json
// [{"type","filename","mime_type","url"}], content_type "text" (or the first attachment's type
// when there is no text), metadata_json {"subject","message_id","in_reply_to","references"}
// (those present).
webhook_result parse_webhook(const settings& s, const webhook& w);

// What a reply needs of the guest's email it answers ("" for what it lacks).
struct thread_info {
  std::string subject, message_id, references;
};

// A reply ready for SMTP: the envelope and the message (CRLF line ends, dot-stuffing is the
// SMTP client's job).
struct mail {
  std::string envelope_from, envelope_to, message_id, data;
};

struct built_mail {
  bool ok = false;
  std::string error;  // when !ok: why the reply cannot be sent (a permanent failure)
  mail m;
};

// The reply to `t`: From (display name RFC 2047-encoded when not ASCII), To, Subject
// (extras["subject"], else "Re: " + the thread's subject unless it has one, else "Your
// message"), Date = `date` (RFC 5322 text), Message-ID <m.id@domain>, In-Reply-To and
// References (when the thread has a Message-ID), MIME-Version, text/plain UTF-8 in
// quoted-printable. Refused: an invalid `to` or from_address, or a header value with CR/LF.
built_mail build_mail(const settings& s, const outbound_message& m, const thread_info& t,
                      std::string_view date);

// Classifies a transfer: `curl_code` is libcurl's CURLcode (0 = done), `smtp_code` the server's
// last reply code (0 = none).
//   done, and no 4xx/5xx reply                sent, provider_message_id = message_id
//   a 4xx reply (421, 450, 451, 452, …)      transient
//   535 or login denied                      permanent (authentication failed)
//   another 5xx reply (550, 553, 554, …)     permanent, error_code = the reply code
//   no STARTTLS, a certificate not trusted,
//   a malformed URL                          permanent
//   no connection, DNS, timeout, TLS or
//   transfer errors, anything else           transient
send_result interpret_send(int curl_code, long smtp_code, std::string_view error_text,
                           const std::string& message_id);

}  // namespace bellhop::channels::email
