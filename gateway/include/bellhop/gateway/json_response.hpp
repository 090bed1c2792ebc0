#pragma once

#include <string>
#include <string_view>

#include "bellhop/gateway/http_types.hpp"

namespace bellhop::gateway {

// The error body of DESIGN.md: {"error":{"code":"…","message":"…","field":"…"}}, `field`
// omitted when empty. Content-Type application/json; version and keep-alive follow `req`.
response json_error(const request& req, http::status status, std::string_view code,
                    std::string_view message, std::string_view field = {});

// The parts of a request a late response needs (version, keep-alive), detached from the
// request itself, which belongs to the connection: for handlers that answer asynchronously.
request request_shell(const request& req);

// `s` as a JSON string literal, quotes included.
std::string json_quote(std::string_view s);

// A response whose body is already serialized JSON.
response json_response(const request& req, http::status status, std::string body);

}  // namespace bellhop::gateway
