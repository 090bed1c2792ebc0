#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::contract {

// Bytes as text, one helper per encoding for every module (docs/security.md: secrets, digests
// and signatures are written with these). The byte strings are std::string_view of raw bytes.

// Lower-case hex, two digits per byte.
std::string to_hex(std::string_view bytes);

// The bytes of `hex` (either case), or nullopt when it has an odd length or a non-hex digit.
std::optional<std::string> from_hex(std::string_view hex);

// Standard base64 (RFC 4648 section 4) with '=' padding, no line breaks.
std::string to_base64(std::string_view bytes);

// base64url (RFC 4648 section 5) without padding: safe in URLs, file names and JSON unescaped.
std::string to_base64url(std::string_view bytes);

}  // namespace bellhop::contract
