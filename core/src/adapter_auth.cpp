#include "bellhop/core/adapter_auth.hpp"

#include <openssl/crypto.h>

#include <algorithm>

#include "bellhop/contract/ids.hpp"

namespace bellhop::gateway {

adapter_auth::adapter_auth(const std::vector<adapter_key>& keys) {
  for (const auto& k : keys) entries_.push_back({contract::sha256(k.key), k});
}

const adapter_key* adapter_auth::authenticate(std::string_view header) const {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size()) return nullptr;
  // The scheme is case-insensitive (RFC 9110).
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return nullptr;
    }
  }
  const auto presented = contract::sha256(header.substr(scheme.size()));
  const adapter_key* match = nullptr;
  for (const auto& e : entries_) {
    if (CRYPTO_memcmp(e.digest.data(), presented.data(), presented.size()) == 0) match = &e.key;
  }
  return match;
}

bool adapter_auth::allows(const adapter_key& key, std::string_view property_id) {
  return std::any_of(key.properties.begin(), key.properties.end(),
                     [&](const std::string& p) { return p == "*" || p == property_id; });
}

}  // namespace bellhop::gateway
