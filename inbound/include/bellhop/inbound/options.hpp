#pragma once

#include <cstddef>

namespace bellhop::gateway {

// What the inbound flow reads of the settings (the API, the ingest, the reaper); the app fills
// it from the config. Each field names its key (docs/configuration.md).
struct inbound_options {
  // POST /v1/messages/inbound
  std::size_t max_text_bytes = 16384;    // inbound.max_text_bytes
  std::size_t max_body_bytes = 1048576;  // http.max_body_bytes

  // What the ingest script writes, and the reaper's dead letters
  int dedup_ttl_s = 604800;          // inbound.dedup_ttl_s
  int message_ttl_s = 604800;        // inbound.message_ttl_s
  int history_max = 10000;           // inbound.history_max
  int conversation_ttl_s = 2592000;  // realtime.conversation_ttl_s
  int recent_messages = 50;          // realtime.recent_messages

  // The reaper
  int max_deliveries = 5;                 // inbound.max_deliveries
  int reaper_interval_ms = 1000;          // inbound.reaper_interval_ms
  int consumer_scan_interval_ms = 60000;  // inbound.consumer_scan_interval_ms
};

}  // namespace bellhop::gateway
