#pragma once

#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <optional>
#include <string_view>

#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// Why a request's framing was refused: the answer to send, after which the connection closes
// (the bytes that follow cannot be trusted to start the next request).
struct framing_error {
  http::status status;
  std::string_view code;
  std::string_view message;
};

// RFC 9112 6.1 and 6.3, checked once when a request's header has been parsed and before its
// body is relied on (docs/http-api.md, "Message framing"). Beast's parser already refuses
// Content-Length values that are not numbers or that disagree, and Transfer-Encoding: chunked
// together with Content-Length; it ignores the rest, which this refuses:
//   400 bad_framing                    Transfer-Encoding in an HTTP/1.0 request; both
//                                      Transfer-Encoding and Content-Length; a
//                                      Transfer-Encoding whose final coding is not chunked, that
//                                      is empty, or that names chunked twice
//   501 unsupported_transfer_coding    a coding before chunked (gzip, deflate, …): none is
//                                      implemented
std::optional<framing_error> check_framing(const http::request_header<>& header);

// The error code of an answer to a request Beast's parser refused: "bad_framing" for its
// Content-Length / Transfer-Encoding errors, "bad_request" for the rest.
std::string_view parse_error_code(boost::beast::error_code ec);

}  // namespace bellhop::gateway
