#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace bellhop::gateway {

// Each channel's section of the configuration (channels.<name>, docs/configuration.md). A
// section holds one account in its own fields (the form of before many accounts), or several
// in `accounts` (`sites` for web chat); once loaded, `accounts` holds them all either way (the
// one-account form as accounts[0]), each with the section's shared values filled in where it
// left them out. An account is known by its id (docs/properties.md, "Accounts and routing").

// A WhatsApp business number; its id is phone_number_id.
struct whatsapp_account {
  std::string property_id, phone_number_id, access_token;
  std::string app_secret, verify_token;  // left out: the section's
};

struct whatsapp_config {
  std::string app_secret, verify_token, access_token, phone_number_id,
      api_base_url = "https://graph.facebook.com/v21.0";
  std::string property_id;  // the property this number belongs to
  // WhatsApp's customer-service window: a free-form message reaches a guest only this long
  // after the guest's last message (Meta: 24 hours; shorter for tests). 0: Bellhop does not
  // check, Meta decides (its error 131047).
  int service_window_s = 86400;
  std::vector<whatsapp_account> accounts;
};

// A Twilio sender; its id is `from` (an E.164 number, or a messaging service SID).
struct twilio_account {
  std::string property_id, account_sid, auth_token, from;
};

struct twilio_config {
  std::string account_sid, auth_token, from, api_base_url = "https://api.twilio.com";
  std::string property_id;  // the property this number belongs to
  std::vector<twilio_account> accounts;
};

// A hotel mailbox; its id is `address` in lower case (`id`, set at load: what guests' mail
// names); replies come from `address` (the adapter writes it in lower case too).
struct email_account {
  std::string property_id, address;
  std::string id;
  std::string webhook_secret, from_name;                             // left out: the section's
  std::string smtp_url, smtp_username, smtp_password, smtp_ca_file;  // left out: the section's
};

// Email: guests' mail arrives through POST /v1/webhooks/email (a provider's inbound parse or a
// relay posts the documented JSON, signed with webhook_secret); replies go out by SMTP.
struct email_config {
  std::string webhook_secret;  // HMAC-SHA256 key of X-Bellhop-Signature
  std::string from_address;    // the hotel's address replies come from
  std::string from_name;       // its display name ("" = none)
  std::string smtp_url;        // smtp://host:587 (STARTTLS required) or smtps://host:465
  std::string smtp_username, smtp_password;  // AUTH; both empty = no AUTH
  std::string smtp_ca_file;  // PEM CA bundle for the server's certificate ("" = the system's)
  std::string property_id;   // the property this address belongs to
  std::vector<email_account> accounts;
};

// A hotel site with the chat widget; its id is `id` ("default" for the one-site form).
struct webchat_site {
  std::string id, property_id;
  std::string allowed_origin;  // "" = any
};

// Web chat: guests of the hotel's site on GET /v1/webchat (WebSocket), anonymous sessions.
struct webchat_config {
  std::string property_id;                // the property the chat belongs to
  int hold_s = 86400;                     // how long replies wait for a guest who is away
  std::string allowed_origin;             // the site's origin ("https://hotel.example"); "" = any
  std::size_t max_sockets = 10000;        // guest sockets per process; beyond: 503
  std::size_t max_sockets_per_ip = 100;   // per client address (IPv6: /64); beyond: 429
  std::size_t send_queue_bytes = 262144;  // unsent bytes per socket before it is closed as slow
  std::size_t max_in_flight = 8;  // messages per socket awaiting Redis; beyond, reading pauses
  std::vector<webchat_site> sites;
};

// What the channel transports take of the configuration (docs/configuration.md): each
// channel's section, and the few settings of other sections they obey.
struct transport_options {
  std::string public_url;                            // public_url (Twilio signs the URL it called)
  std::size_t max_text_bytes = 16384;                // inbound.max_text_bytes
  int history_max = 10000;                           // inbound.history_max
  std::chrono::milliseconds request_timeout{10000};  // outbound.request_timeout_ms
  std::size_t concurrency = 8;  // outbound.concurrency (SMTP transfers: at most 4 of them)
  std::optional<whatsapp_config> whatsapp;  // channels.whatsapp
  std::optional<twilio_config> twilio;      // channels.twilio
  std::optional<email_config> email;        // channels.email
  std::optional<webchat_config> webchat;    // channels.webchat
};

}  // namespace bellhop::gateway
