#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace bellhop::contract {

// `n` bytes from the system's cryptographic generator (OpenSSL RAND_bytes); nullopt when it
// fails, which callers report as they see fit (a refused connection, a startup error).
std::optional<std::string> random_bytes(std::size_t n);

// A new secret: `n` random bytes in base64url without padding (32 bytes: 43 characters).
std::optional<std::string> random_secret(std::size_t n = 32);

// Equal bytes, compared in constant time (CRYPTO_memcmp) once the lengths match: for values
// whose length is no secret (digests, signatures of a fixed algorithm).
bool constant_time_equal(std::string_view a, std::string_view b);

// Equal secrets, compared as SHA-256 digests in constant time: timing tells neither the
// length of either nor how much of it matched.
bool secrets_equal(std::string_view a, std::string_view b);

}  // namespace bellhop::contract
