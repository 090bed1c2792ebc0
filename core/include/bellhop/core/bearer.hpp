#pragma once

#include <optional>
#include <string_view>

namespace bellhop::gateway {

// The credentials of an Authorization header in the Bearer scheme: what follows "Bearer ",
// the scheme matched case-insensitively (RFC 9110), nothing trimmed; nullopt for another
// scheme or no header. Adapter keys, staff tokens, the admin and the metrics token all come so.
std::optional<std::string_view> bearer_credentials(std::string_view authorization);

// Whether an Authorization header is "Bearer <token>" with exactly `token`, compared in
// constant time (contract::secrets_equal): timing tells neither the token's length nor how
// much of it matched. An empty `token` matches nothing. The scheme is spelled exactly "Bearer",
// as the admin and metrics tokens have always required.
bool bearer_matches(std::string_view authorization, std::string_view token);

}  // namespace bellhop::gateway
