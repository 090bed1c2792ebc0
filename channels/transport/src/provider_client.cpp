#include "bellhop/transport/provider_client.hpp"

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

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <memory>
#include <mutex>
#include <vector>

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;
using steady = std::chrono::steady_clock;

template <class Stream>
beast::tcp_stream& tcp_of(Stream& s) {
  if constexpr (std::is_same_v<Stream, plain_stream>)
    return s;
  else
    return beast::get_lowest_layer(s);
}

// An idle keep-alive connection is only worth reusing while the server has neither closed it
// nor sent anything (a TLS close_notify, a late error): a peek that would block says so.
bool quiet_and_open(beast::tcp_stream& s) {
  char c;
  const auto n = ::recv(s.socket().native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct provider_client::pool {
  // Servers close idle connections after a while (often 60 s or more): well before that, a
  // connection is dropped here rather than found closed by a send.
  static constexpr auto max_idle = std::chrono::seconds(30);
  // As many as a lane's sends may use at once (outbound.concurrency): with fewer kept, every
  // send beyond them would open a connection of its own and close it after one request.
  explicit pool(std::size_t max) : max_per_origin(max) {}
  const std::size_t max_per_origin;

  template <class Stream>
  struct idle {
    std::unique_ptr<Stream> stream;
    asio::any_io_executor ex;
    steady::time_point since;
  };

  std::mutex mutex;
  std::map<std::string, std::vector<idle<plain_stream>>> plain;
  std::map<std::string, std::vector<idle<tls_stream>>> tls;

  template <class Stream>
  std::map<std::string, std::vector<idle<Stream>>>& of() {
    if constexpr (std::is_same_v<Stream, plain_stream>)
      return plain;
    else
      return tls;
  }

  // The most recently used live connection to `origin` made on `ex`, or null.
  template <class Stream>
  std::unique_ptr<Stream> take(const std::string& origin, const asio::any_io_executor& ex) {
    std::vector<std::unique_ptr<Stream>> stale;  // closed outside the lock
    std::unique_ptr<Stream> found;
    {
      std::lock_guard lock(mutex);
      auto& list = of<Stream>()[origin];
      const auto now = steady::now();
      for (auto it = list.rbegin(); it != list.rend() && !found;) {
        if (now - it->since > max_idle || !quiet_and_open(tcp_of(*it->stream))) {
          stale.push_back(std::move(it->stream));
        } else if (it->ex == ex) {
          found = std::move(it->stream);
        } else {
          ++it;
          continue;
        }
        it = decltype(it)(list.erase(std::next(it).base()));
      }
    }
    for (auto& s : stale) {
      beast::error_code ignored;
      tcp_of(*s).socket().close(ignored);
    }
    return found;
  }

  template <class Stream>
  void give(const std::string& origin, asio::any_io_executor ex, std::unique_ptr<Stream> s) {
    tcp_of(*s).expires_never();
    std::lock_guard lock(mutex);
    auto& list = of<Stream>()[origin];
    if (list.size() >= max_per_origin) return;  // closed by its destructor
    list.push_back({std::move(s), std::move(ex), steady::now()});
  }
};

namespace {

// One call: (resolve, connect, TLS handshake, unless a kept-alive connection is reused), write,
// read, under one deadline. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
// A connection whose answer allows it goes back to the pool.
template <class Stream>
class exchange : public std::enable_shared_from_this<exchange<Stream>> {
 public:
  exchange(std::unique_ptr<Stream> stream, bool reused, std::shared_ptr<provider_client::pool> pool,
           std::string origin, asio::any_io_executor ex, std::string host, std::string port,
           http::request<http::string_body> req, std::chrono::milliseconds timeout,
           std::function<void(provider_response)> done)
      : stream_(std::move(stream)),
        reused_(reused),
        pool_(std::move(pool)),
        origin_(std::move(origin)),
        ex_(ex),
        resolver_(ex),
        host_(std::move(host)),
        port_(std::move(port)),
        req_(std::move(req)),
        timeout_(timeout),
        done_(std::move(done)) {}

  void start() {
    tcp_layer().expires_after(timeout_);
    if (reused_) return write();
    resolver_.async_resolve(host_, port_,
                            [self = this->shared_from_this()](beast::error_code ec,
                                                              tcp::resolver::results_type r) {
                              if (ec) return self->fail("resolve " + self->host_, ec);
                              self->connect(r);
                            });
  }

 private:
  beast::tcp_stream& tcp_layer() { return tcp_of(*stream_); }

  void connect(const tcp::resolver::results_type& r) {
    tcp_layer().async_connect(r, [self = this->shared_from_this()](beast::error_code ec,
                                                                   const tcp::endpoint&) {
      if (ec) return self->fail("connect to " + self->host_ + ":" + self->port_, ec);
      if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        self->write();
      } else {
        self->stream_->async_handshake(asio::ssl::stream_base::client,
                                      [self](beast::error_code ec2) {
                                        if (ec2) return self->fail("TLS with " + self->host_, ec2);
                                        self->write();
                                      });
      }
    });
  }

  void write() {
    http::async_write(*stream_, req_,
                      [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
                        if (ec) return self->fail("write", ec);
                        self->read();
                      });
  }

  void read() {
    parser_.body_limit(1 << 20);
    http::async_read(*stream_, buffer_, parser_,
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
    if (res.keep_alive() && buffer_.size() == 0) {
      pool_->give(origin_, ex_, std::move(stream_));
    } else {
      beast::error_code ignored;
      tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    }
    done_(std::move(r));
  }

  void fail(const std::string& what, beast::error_code ec) {
    provider_response r;
    r.error = what + ": " + (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    done_(std::move(r));
  }

  std::unique_ptr<Stream> stream_;
  bool reused_;
  std::shared_ptr<provider_client::pool> pool_;
  std::string origin_;
  asio::any_io_executor ex_;
  tcp::resolver resolver_;
  std::string host_, port_;
  http::request<http::string_body> req_;
  std::chrono::milliseconds timeout_;
  std::function<void(provider_response)> done_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

provider_client::provider_client(std::chrono::milliseconds timeout, std::size_t max_idle_per_origin)
    : timeout_(timeout),
      tls_(asio::ssl::context::tls_client),
      pool_(std::make_shared<pool>(std::max<std::size_t>(max_idle_per_origin, 1))) {
  tls_.set_default_verify_paths();
  tls_.set_verify_mode(asio::ssl::verify_peer);
}

provider_client::~provider_client() = default;

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

  const std::string origin = std::string(url->scheme()) + "://" + host + ":" + port;
  if (tls) {
    auto stream = pool_->take<tls_stream>(origin, ex);
    const bool reused = stream != nullptr;
    if (!stream) {
      stream = std::make_unique<tls_stream>(ex, tls_);
      if (!SSL_set_tlsext_host_name(stream->native_handle(), host.c_str())) {
        provider_response r;
        r.error = "TLS: cannot set the server name " + host;
        asio::post(ex, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
        return;
      }
      stream->set_verify_callback(asio::ssl::host_name_verification(host));
    }
    std::make_shared<exchange<tls_stream>>(std::move(stream), reused, pool_, origin, ex, host, port,
                                           std::move(req), timeout_, std::move(done))
        ->start();
  } else {
    auto stream = pool_->take<plain_stream>(origin, ex);
    const bool reused = stream != nullptr;
    if (!stream) stream = std::make_unique<plain_stream>(ex);
    std::make_shared<exchange<plain_stream>>(std::move(stream), reused, pool_, origin, ex, host,
                                             port, std::move(req), timeout_, std::move(done))
        ->start();
  }
}

}  // namespace bellhop::gateway
