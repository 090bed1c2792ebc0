#pragma once

// What the adapters of JSON webhooks share (internal to channels/): the HMAC-SHA256 signature
// header ("sha256=<hex>", Meta's X-Hub-Signature-256 and Bellhop's own X-Bellhop-Signature),
// the Content-Type check, and the nesting limit checked before RapidJSON parses.

#include <string_view>

namespace bellhop::channels::detail {

// True when `header_value` is "sha256=" (any case) and the hex (any case) HMAC-SHA256 of `body`
// with `secret`, compared in constant time. An empty secret never matches.
bool hmac_sha256_header_valid(std::string_view secret, std::string_view body,
                              std::string_view header_value);

// application/json, with no charset or a UTF-8 one.
bool is_json_content_type(std::string_view value);

// RapidJSON recurses once per level: a body of 100 000 '[' would exhaust the stack, so the
// depth is counted (outside strings) before parsing.
bool nesting_within(std::string_view text, int max_depth);

}  // namespace bellhop::channels::detail
