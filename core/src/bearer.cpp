#include "bellhop/core/bearer.hpp"

#include <cctype>

#include "bellhop/contract/secrets.hpp"

namespace bellhop::gateway {
namespace {

constexpr std::string_view scheme = "Bearer ";

}  // namespace

std::optional<std::string_view> bearer_credentials(std::string_view authorization) {
  if (authorization.size() < scheme.size()) return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return std::nullopt;
    }
  }
  return authorization.substr(scheme.size());
}

bool bearer_matches(std::string_view authorization, std::string_view token) {
  const auto presented = bearer_credentials(authorization);
  if (token.empty() || !presented || presented->empty() || !authorization.starts_with(scheme)) {
    return false;
  }
  return contract::secrets_equal(*presented, token);
}

}  // namespace bellhop::gateway
