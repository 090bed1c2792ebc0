#include "framing.hpp"

#include <boost/beast/http/rfc7230.hpp>

namespace bellhop::gateway {

std::optional<framing_error> check_framing(const http::request_header<>& header) {
  const auto codings = header.equal_range(http::field::transfer_encoding);
  if (codings.first == codings.second) return std::nullopt;  // Content-Length or no body
  if (header.version() < 11) {
    return framing_error{http::status::bad_request, "bad_framing",
                         "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  if (header.find(http::field::content_length) != header.end()) {
    return framing_error{http::status::bad_request, "bad_framing",
                         "a request must not have both Transfer-Encoding and Content-Length"};
  }
  // The codings of all Transfer-Encoding fields in order, as if they were one list.
  std::size_t count = 0, chunked = 0;
  bool last_chunked = false, unknown = false;
  for (auto it = codings.first; it != codings.second; ++it) {
    const http::opt_token_list list{it->value()};
    if (!http::validate_list(list)) {
      return framing_error{http::status::bad_request, "bad_framing",
                           "Transfer-Encoding is not a list of codings"};
    }
    for (const auto coding : list) {
      ++count;
      last_chunked = boost::beast::iequals(coding, "chunked");
      if (last_chunked)
        ++chunked;
      else
        unknown = true;
    }
  }
  if (count == 0 || !last_chunked || chunked > 1) {
    return framing_error{http::status::bad_request, "bad_framing",
                         "the final Transfer-Encoding must be chunked, applied once"};
  }
  if (unknown) {
    return framing_error{http::status::not_implemented, "unsupported_transfer_coding",
                         "no transfer coding but chunked is supported"};
  }
  return std::nullopt;
}

std::string_view parse_error_code(boost::beast::error_code ec) {
  if (ec == http::error::bad_content_length || ec == http::error::multiple_content_length ||
      ec == http::error::bad_transfer_encoding) {
    return "bad_framing";
  }
  return "bad_request";
}

}  // namespace bellhop::gateway
