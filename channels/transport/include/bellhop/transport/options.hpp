#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>

#include "bellhop/core/config.hpp"

namespace bellhop::gateway {

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
