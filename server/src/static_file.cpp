#include "bellhop/server/static_file.hpp"

#include "bellhop/contract/ids.hpp"

namespace bellhop::gateway {

static_file static_file::of(std::string_view body, std::string_view content_type) {
  return {body, content_type, "\"" + contract::sha256_hex(body, 12) + "\""};
}

response serve_static(const request& req, const static_file& f, http::status status) {
  const bool fresh = status == http::status::ok && req[http::field::if_none_match] == f.etag;
  response out{fresh ? http::status::not_modified : status, req.version()};
  out.set(http::field::etag, f.etag);
  if (!fresh) {
    out.set(http::field::content_type, f.content_type);
    out.body() = std::string(f.body);
  }
  out.keep_alive(req.keep_alive());
  out.prepare_payload();
  return out;
}

}  // namespace bellhop::gateway
