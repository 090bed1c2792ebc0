#include "support/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <cctype>

namespace bellhop::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct http_connection::impl {
  std::uint16_t port;
  asio::io_context ioc;
  std::unique_ptr<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
};

http_connection::http_connection(std::uint16_t port) : impl_(std::make_unique<impl>()) {
  impl_->port = port;
}

http_connection::~http_connection() = default;

http_result http_connection::request(const std::string& method, const std::string& target,
                                     const std::string& body,
                                     const std::map<std::string, std::string>& headers) {
  http_result result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      if (!impl_->stream) {
        impl_->stream = std::make_unique<beast::tcp_stream>(impl_->ioc);
        impl_->stream->connect(
            asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), impl_->port));
        impl_->buffer.clear();
      }
      impl_->stream->expires_after(std::chrono::seconds(20));
      http::request<http::string_body> req{http::string_to_verb(method), target, 11};
      req.set(http::field::host, "127.0.0.1");
      for (auto& [k, v] : headers) req.set(k, v);
      req.body() = body;
      req.prepare_payload();
      http::write(*impl_->stream, req);
      http::response<http::string_body> res;
      http::read(*impl_->stream, impl_->buffer, res);
      result.status = static_cast<int>(res.result_int());
      result.body = res.body();
      result.headers.clear();
      for (auto& field : res) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        result.headers[name] = std::string(field.value());
      }
      if (!res.keep_alive()) impl_->stream.reset();
      return result;
    } catch (const std::exception&) {
      // A keep-alive connection the server closed: reconnect and send once more. (Tests that
      // count answers post inbound messages, which the server deduplicates by external_id.)
      impl_->stream.reset();
      result.status = 0;
    }
  }
  return result;
}

http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body,
                         const std::map<std::string, std::string>& headers) {
  http_result result;
  try {
    asio::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    if (!body.empty() || method == "POST") req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    for (auto& field : res) {
      std::string name(field.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string(field.value());
    }
    beast::error_code ec;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  } catch (const std::exception&) {
    result.status = 0;
  }
  return result;
}

}  // namespace bellhop::test
