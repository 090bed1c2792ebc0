#pragma once

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

#include "bellhop/core/metrics.hpp"
#include "bellhop/json/parse.hpp"

namespace bellhop::gateway {

// Elements read back from Redis that Bellhop cannot use ("poison": not JSON, too large, too
// deep, not UTF-8, a required field missing or of the wrong type). Whoever meets one moves it
// to its queue's dead letters (or skips it when it only reads), counts it here and logs it once;
// the loop that read it goes on (docs/security.md).
//
// Sources: inbound (a dead consumer's processing list), inbound_oldest (the oldest message of
// inbound:messages, read for the age gauge), outbound (outbound:<channel> and its ready,
// delayed and processing sets), webchat_outbox, conversation_messages, event_history (a
// property's event stream read back for a dashboard's `since` or a gap, and the same events
// live from pub/sub when they are not in Bellhop's layout).
// Reasons: too_large, too_deep, invalid_utf8, syntax (bellhop::json's), not_object, invalid
// (a field missing or of the wrong type).
inline counter_family& poison_metric(metrics_registry& metrics) {
  return metrics.add_counter("bellhop_poison_elements_total",
                             "Elements read from Redis that Bellhop could not use, by source "
                             "and reason; each went to its queue's dead letters or was skipped.",
                             {"source", "reason"});
}

// The reason label of a parse that failed, or of a parsed value that is not an object.
inline std::string_view poison_reason(const json::result& r) {
  return r ? std::string_view("not_object") : json::to_string(r.code);
}

// `text` with every byte that is not part of a valid UTF-8 sequence (overlong forms and
// surrogates included) replaced by U+FFFD: a dead letter quotes a poison element in a JSON string,
// and that string must itself be valid JSON.
std::string valid_utf8(std::string_view text);

// Counts one poison element and logs it once, at warn, naming where it was and why; never its
// content.
inline void report_poison(counter_family& metric, std::string_view source, std::string_view key,
                          std::string_view reason, std::string_view detail) {
  metric.labels({source, reason}).inc();
  spdlog::warn("poison element in {} ({}): {}", key, reason, detail);
}

}  // namespace bellhop::gateway
