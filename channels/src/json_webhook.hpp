#pragma once

// What the adapters of JSON webhooks share (internal to channels/): the HMAC-SHA256 signature
// header ("sha256=<hex>", Meta's X-Hub-Signature-256 and Bellhop's own X-Bellhop-Signature),
// the Content-Type check, and the limits of the JSON parse.

#include <string_view>

#include "bellhop/json/parse.hpp"

namespace bellhop::channels::detail {

// True when `header_value` is "sha256=" (any case) and the hex (any case) HMAC-SHA256 of `body`
// with `secret`, compared in constant time. An empty secret never matches.
bool hmac_sha256_header_valid(std::string_view secret, std::string_view body,
                              std::string_view header_value);

// application/json, with no charset or a UTF-8 one.
bool is_json_content_type(std::string_view value);

// A webhook body or a provider's reply, parsed through bellhop::json: at most `max_depth`
// levels, and at most 16 MiB (Bellhop's HTTP layer refuses bodies over http.max_body_bytes, 413,
// before an adapter sees them; provider replies are read up to 1 MiB).
inline json::limits body_limits(int max_depth) {
  return {.max_bytes = 16 << 20, .max_depth = static_cast<unsigned>(max_depth)};
}

}  // namespace bellhop::channels::detail
