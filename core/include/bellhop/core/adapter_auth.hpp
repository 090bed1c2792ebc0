#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace bellhop::gateway {

// One configured adapter key (auth.adapter_keys).
struct adapter_key {
  std::string name;
  std::string key;
  std::vector<std::string> properties;  // property ids, or "*" for all
};

// Checks `Authorization: Bearer <key>` against the configured adapter keys in constant time:
// keys are compared as SHA-256 digests (equal lengths) with CRYPTO_memcmp, and every key is
// compared, so timing tells neither which key nor how much of it matched.
class adapter_auth {
 public:
  explicit adapter_auth(const std::vector<adapter_key>& keys);

  // The matching key, or nullptr.
  const adapter_key* authenticate(std::string_view authorization_header) const;
  // Whether the key may act for this property ("*" allows all).
  static bool allows(const adapter_key& key, std::string_view property_id);

 private:
  struct entry {
    std::array<unsigned char, 32> digest;
    adapter_key key;
  };
  std::vector<entry> entries_;
};

}  // namespace bellhop::gateway
