#include "bellhop/core/adapter_auth.hpp"

#include <algorithm>

#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/secrets.hpp"
#include "bellhop/core/bearer.hpp"

namespace bellhop::gateway {
namespace {

std::string_view as_bytes(const std::array<unsigned char, 32>& digest) {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}

}  // namespace

adapter_auth::adapter_auth(const std::vector<adapter_key>& keys) {
  for (const auto& k : keys) entries_.push_back({contract::sha256(k.key), k});
}

const adapter_key* adapter_auth::authenticate(std::string_view header) const {
  const auto credentials = bearer_credentials(header);
  if (!credentials || credentials->empty()) return nullptr;
  const auto presented = contract::sha256(*credentials);
  const adapter_key* match = nullptr;
  for (const auto& e : entries_) {  // every key compared: timing tells none of them
    if (contract::constant_time_equal(as_bytes(e.digest), as_bytes(presented))) match = &e.key;
  }
  return match;
}

bool adapter_auth::allows(const adapter_key& key, std::string_view property_id) {
  return std::any_of(key.properties.begin(), key.properties.end(),
                     [&](const std::string& p) { return p == "*" || p == property_id; });
}

}  // namespace bellhop::gateway
