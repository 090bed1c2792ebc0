#include "bellhop/contract/secrets.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <climits>

#include "bellhop/contract/encoding.hpp"
#include "bellhop/contract/ids.hpp"

namespace bellhop::contract {

std::optional<std::string> random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (n > static_cast<std::size_t>(INT_MAX) ||
      RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    return std::nullopt;
  }
  return out;
}

std::optional<std::string> random_secret(std::size_t n) {
  auto bytes = random_bytes(n);
  if (!bytes) return std::nullopt;
  return to_base64url(*bytes);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool secrets_equal(std::string_view a, std::string_view b) {
  const auto da = sha256(a);
  const auto db = sha256(b);
  return CRYPTO_memcmp(da.data(), db.data(), da.size()) == 0;
}

}  // namespace bellhop::contract
