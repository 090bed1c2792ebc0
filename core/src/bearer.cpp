#include "bellhop/core/bearer.hpp"

#include <openssl/crypto.h>

#include "bellhop/contract/ids.hpp"

namespace bellhop::gateway {

bool bearer_matches(std::string_view authorization, std::string_view token) {
  if (token.empty()) return false;
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size() || authorization.substr(0, scheme.size()) != scheme)
    return false;
  const auto a = contract::sha256(authorization.substr(scheme.size()));
  const auto b = contract::sha256(token);
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace bellhop::gateway
