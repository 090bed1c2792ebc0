#pragma once

#include <string_view>

namespace bellhop::gateway {

// Whether an Authorization header is "Bearer <token>" with exactly `token`, compared in
// constant time (SHA-256 digests of both, CRYPTO_memcmp): timing tells neither the token's
// length nor how much of it matched. An empty `token` matches nothing.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace bellhop::gateway
