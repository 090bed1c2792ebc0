#include "json_webhook.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>

#include "bellhop/contract/encoding.hpp"
#include "bellhop/contract/secrets.hpp"
#include "text.hpp"

namespace bellhop::channels::detail {
namespace {

const unsigned char* bytes(std::string_view v) {
  static const unsigned char empty = 0;
  return v.empty() ? &empty : reinterpret_cast<const unsigned char*>(v.data());
}

}  // namespace

bool hmac_sha256_header_valid(std::string_view secret, std::string_view body,
                              std::string_view header_value) {
  if (secret.empty() || secret.size() > static_cast<std::size_t>(INT_MAX)) return false;
  constexpr std::string_view prefix = "sha256=";
  const auto v = trim(header_value);
  if (v.size() != prefix.size() + 64 || !iequals(v.substr(0, prefix.size()), prefix)) return false;
  const auto given = contract::from_hex(v.substr(prefix.size()));
  if (!given) return false;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), bytes(body), body.size(),
           mac, &len) == nullptr) {
    return false;
  }
  return contract::constant_time_equal({reinterpret_cast<const char*>(mac), len}, *given);
}

bool is_json_content_type(std::string_view value) {
  auto semi = value.find(';');
  if (!iequals(trim(value.substr(0, semi)), "application/json")) return false;
  while (semi != std::string_view::npos) {
    value = value.substr(semi + 1);
    semi = value.find(';');
    const auto param = trim(value.substr(0, semi));
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    auto v = trim(param.substr(eq + 1));
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
    if (iequals(trim(param.substr(0, eq)), "charset") && !iequals(v, "utf-8") &&
        !iequals(v, "utf8")) {
      return false;
    }
  }
  return true;
}

}  // namespace bellhop::channels::detail
