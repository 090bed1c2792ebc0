#include "provider_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <openssl/ssl.h>

#include <cctype>
#include <memory>

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// One call: resolve, connect, (TLS handshake), write, read, under one deadline. Stream is
// beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class exchange : public std::enable_shared_from_this<exchange<Stream>> {
 public:
  exchange(Stream stream, asio::any_io_executor ex, std::string host, std::string port,
           http::request<http::string_body> req, std::chrono::milliseconds timeout,
           std::function<void(provider_response)> done)
      : stream_(std::move(stream)),
        resolver_(ex),
        host_(std::move(host)),
        port_(std::move(port)),
        req_(std::move(req)),
        timeout_(timeout),
        done_(std::move(done)) {}

  void start() {
    tcp_layer().expires_after(timeout_);
    resolver_.async_resolve(host_, port_,
                            [self = this->shared_from_this()](beast::error_code ec,
                                                              tcp::resolver::results_type r) {
                              if (ec) return self->fail("resolve " + self->host_, ec);
                              self->connect(r);
                            });
  }

 private:
  beast::tcp_stream& tcp_layer() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>)
      return stream_;
    else
      return beast::get_lowest_layer(stream_);
  }

  void connect(const tcp::resolver::results_type& r) {
    tcp_layer().async_connect(r, [self = this->shared_from_this()](beast::error_code ec,
                                                                   const tcp::endpoint&) {
      if (ec) return self->fail("connect to " + self->host_ + ":" + self->port_, ec);
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        self->write();
      } else {
        self->stream_.async_handshake(asio::ssl::stream_base::client,
                                      [self](beast::error_code ec2) {
                                        if (ec2) return self->fail("TLS with " + self->host_, ec2);
                                        self->write();
                                      });
      }
    });
  }

  void write() {
    http::async_write(stream_, req_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->fail("write", ec);
                        self->read();
                      });
  }

  void read() {
    parser_.body_limit(1 << 20);
    http::async_read(stream_, buffer_, parser_,
                     [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return self->fail("read", ec);
                       self->finish();
                     });
  }

  void finish() {
    provider_response r;
    auto& res = parser_.get();
    r.status = static_cast<int>(res.result_int());
    for (const auto& f : res) r.headers[lower(f.name_string())] = std::string(f.value());
    r.body = std::move(res.body());
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    done_(std::move(r));
  }

  void fail(const std::string& what, beast::error_code ec) {
    provider_response r;
    r.error = what + ": " + (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    done_(std::move(r));
  }

  Stream stream_;
  tcp::resolver resolver_;
  std::string host_, port_;
  http::request<http::string_body> req_;
  std::chrono::milliseconds timeout_;
  std::function<void(provider_response)> done_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

provider_client::provider_client(std::chrono::milliseconds timeout)
    : timeout_(timeout), tls_(asio::ssl::context::tls_client) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(asio::ssl::verify_peer);
}

void provider_client::call(const channels::http_call& c, asio::any_io_executor ex,
                           std::function<void(provider_response)> done) {
  auto url = boost::urls::parse_absolute_uri(c.url);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty()) {
    provider_response r;
    r.error = "not an http(s) URL: " + c.url;
    asio::post(ex, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    return;
  }
  const bool tls = url->scheme() == "https";
  std::string host(url->host_address());
  std::string port = url->has_port() ? std::string(url->port()) : (tls ? "443" : "80");
  std::string target(url->encoded_resource());  // path, query, fragment
  if (target.empty() || target[0] != '/') target.insert(0, "/");

  http::request<http::string_body> req{http::string_to_verb(c.method), target, 11};
  req.set(http::field::host, url->has_port() ? host + ":" + port : host);
  req.set(http::field::user_agent, "bellhop");
  for (const auto& [name, value] : c.headers) req.set(name, value);
  req.body() = c.body;
  req.prepare_payload();

  if (tls) {
    beast::ssl_stream<beast::tcp_stream> stream(ex, tls_);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), host.c_str())) {
      provider_response r;
      r.error = "TLS: cannot set the server name " + host;
      asio::post(ex, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
      return;
    }
    stream.set_verify_callback(asio::ssl::host_name_verification(host));
    std::make_shared<exchange<beast::ssl_stream<beast::tcp_stream>>>(
        std::move(stream), ex, host, port, std::move(req), timeout_, std::move(done))
        ->start();
  } else {
    std::make_shared<exchange<beast::tcp_stream>>(beast::tcp_stream(ex), ex, host, port,
                                                  std::move(req), timeout_, std::move(done))
        ->start();
  }
}

}  // namespace bellhop::gateway
