#pragma once

#include <string_view>

namespace bellhop::json {

// Well-formed UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. The
// one check for text that is not JSON (form fields, frames built from Redis data); JSON text is
// checked by parse() itself.
bool is_valid_utf8(std::string_view s) noexcept;

}  // namespace bellhop::json
