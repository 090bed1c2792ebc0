#pragma once

#include <string>
#include <string_view>

#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// A file embedded in the binary (the web chat widget, the console's pages), as it is served:
// its body, Content-Type and ETag, the digest of the body (a Bellhop with another file gets
// another ETag, so browsers revalidate into the new one).
struct static_file {
  std::string_view body;  // embedded: lives as long as the program
  std::string_view content_type;
  std::string etag;

  static static_file of(std::string_view body, std::string_view content_type);
};

// The file's answer: `status` (200) with ETag, Content-Type and the body, or 304 with the ETag
// only when the request's If-None-Match names it (a status other than 200 is always answered
// whole). Version and keep-alive follow `req`; caching and security headers are the caller's.
response serve_static(const request& req, const static_file& f,
                      http::status status = http::status::ok);

}  // namespace bellhop::gateway
