#include "http_session.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <charconv>

#include "bellhop/core/client_address.hpp"
#include "bellhop/server/json_response.hpp"
#include "bellhop/server/responder.hpp"
#include "bellhop/server/router.hpp"
#include "framing.hpp"
#include "lingering_close.hpp"
#include "overload_session.hpp"
#include "server_shared.hpp"

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::size_t read_chunk = 4096;

std::string endpoint_text(const tcp::socket& socket) {
  beast::error_code ec;
  const auto ep = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

asio::ip::address peer_address(const tcp::socket& socket) {
  beast::error_code ec;
  return socket.remote_endpoint(ec).address();
}

bool is_parse_error(beast::error_code ec) {
  return ec.category() == beast::http::make_error_code(http::error::bad_method).category() &&
         ec != http::error::partial_message && ec != http::error::end_of_stream;
}

// Every X-Forwarded-For field of a request, joined by ",".
std::string forwarded_for(const request& req) {
  std::string forwarded;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
    if (!forwarded.empty()) forwarded += ',';
    forwarded.append(it->value());
  }
  return forwarded;
}

}  // namespace

http_session::http_session(tcp::socket&& socket, std::shared_ptr<server_shared> shared,
                           std::shared_ptr<connection_limits::slot> slot)
    : stream_(std::move(socket)),
      executor_(stream_.get_executor()),
      shared_(std::move(shared)),
      remote_(endpoint_text(stream_.socket())),
      peer_(peer_address(stream_.socket())),
      slot_(std::move(slot)),
      deadline_(clock::now() + shared_->opts.read_timeout) {}

http_session::~http_session() {
  if (id_) shared_->tracker.remove(*id_);
}

void http_session::start() {
  id_ = shared_->tracker.add(weak_from_this());
  if (!id_) return;
  asio::dispatch(executor_,
                 beast::bind_front_handler(&http_session::wait_for_request, shared_from_this()));
}

void http_session::shutdown() {
  asio::post(executor_, beast::bind_front_handler(&http_session::on_shutdown, shared_from_this()));
}

void http_session::on_shutdown() {
  stopping_ = true;
  // Only an idle connection is cut; otherwise the request finishes with Connection: close.
  if (phase_ == phase::waiting) stream_.socket().cancel();
}

void http_session::wait_for_request() {
  phase_ = phase::waiting;
  if (stopping_) return close();
  if (buffer_.size() > 0) return on_first_bytes({}, 0);  // pipelined request already here
  // A new connection gets read_timeout for its first request in all; a kept-alive one may stay
  // quiet for idle_timeout before a request starts.
  if (first_request_) {
    stream_.expires_at(deadline_);
  } else {
    stream_.expires_after(shared_->opts.idle_timeout);
  }
  stream_.async_read_some(
      buffer_.prepare(read_chunk),
      beast::bind_front_handler(&http_session::on_first_bytes, shared_from_this()));
}

void http_session::on_first_bytes(beast::error_code ec, std::size_t bytes) {
  buffer_.commit(bytes);
  if (ec) {
    if (ec == beast::error::timeout && first_request_) {
      shared_->metrics.read_timeouts.inc();
      spdlog::warn("http: {} sent no request within {} ms; closing", remote_,
                   shared_->opts.read_timeout.count());
    }
    // Idle timeout, peer closed, or cancelled by shutdown: the destructor closes the socket.
    return;
  }
  if (!first_request_) deadline_ = clock::now() + shared_->opts.read_timeout;
  read_header();
}

void http_session::read_header() {
  phase_ = phase::reading;
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(shared_->opts.max_header_bytes));
  parser_->body_limit(shared_->opts.max_body_bytes);
  parser_->eager(true);  // parse body bytes that arrive with the header, too
  if (parse_buffered()) return;
  stream_.expires_at(deadline_);
  if (parser_->is_header_done()) return on_header({}, 0);
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&http_session::on_header, shared_from_this()));
}

// Most requests arrive whole in the first read: parse them from the buffer on the spot instead
// of going through two more asynchronous reads (each a strand dispatch and a timer). Returns
// true if the request was handled (complete or erroneous); false if more bytes are needed.
bool http_session::parse_buffered() {
  beast::error_code ec;
  while (buffer_.size() > 0 && !parser_->is_done()) {
    const auto used = parser_->put(buffer_.data(), ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) {
      ec = {};
      break;
    }
    if (ec || used == 0) break;
  }
  if (ec) {
    on_read_error(ec);
    return true;
  }
  if (!parser_->is_done()) return false;
  if (!framing_ok()) return true;
  handle_request();
  return true;
}

void http_session::on_header(beast::error_code ec, std::size_t) {
  if (ec) return on_read_error(ec);
  if (!framing_ok()) return;
  const auto& header = parser_->get();
  // A client that asks first (curl does for large bodies) would otherwise wait before sending.
  if (!parser_->is_done() && header.version() >= 11 &&
      beast::iequals(header[http::field::expect], "100-continue")) {
    asio::async_write(stream_, asio::buffer(continue_response),
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        if (!write_ec) self->read_body();
                      });
    return;
  }
  read_body();
}

void http_session::read_body() {
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&http_session::on_request, shared_from_this()));
}

void http_session::on_request(beast::error_code ec, std::size_t) {
  if (ec) return on_read_error(ec);
  handle_request();
}

void http_session::on_read_error(beast::error_code ec) {
  if (ec == beast::error::timeout) {
    shared_->metrics.read_timeouts.inc();
    spdlog::warn("http: {} did not complete a request within {} ms; closing", remote_,
                 shared_->opts.read_timeout.count());
    return;  // the stream closed the socket
  }
  if (ec == http::error::body_limit) {
    return reject(
        http::status::payload_too_large, "payload_too_large",
        "request body exceeds " + std::to_string(shared_->opts.max_body_bytes) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return reject(
        http::status::request_header_fields_too_large, "headers_too_large",
        "request headers exceed " + std::to_string(shared_->opts.max_header_bytes) + " bytes");
  }
  if (is_parse_error(ec)) {
    spdlog::debug("http: malformed request from {}: {}", remote_, ec.message());
    return reject(http::status::bad_request, parse_error_code(ec),
                  "malformed HTTP request: " + ec.message());
  }
  // Peer went away mid-request, reset, or shutdown cancelled the read.
  spdlog::debug("http: read from {} ended: {}", remote_, ec.message());
}

// Called once per request, when its header has been parsed: a request framed ambiguously is
// refused and its connection closed, so what follows it is never read as a request.
bool http_session::framing_ok() {
  const auto refused = check_framing(parser_->get());
  if (!refused) return true;
  spdlog::debug("http: {} sent a badly framed request: {}", remote_, refused->message);
  reject(refused->status, refused->code, std::string(refused->message));
  return false;
}

// Answers a request that could not be read completely. The rest of it is still unread, so the
// connection cannot carry another request: it is closed after the answer.
void http_session::reject(http::status status, std::string_view code, const std::string& message) {
  request req;
  std::string_view route = "unmatched";
  http::verb method = http::verb::unknown;
  // The request line may have been read even when the header was not (e.g. a Content-Length
  // over the limit stops the parser in the middle of the fields).
  if (parser_ && !parser_->get().target().empty()) {
    const auto& header = parser_->get();
    req.version(header.version());
    method = header.method();
    route = shared_->routes->match(method, header.target()).name;
  }
  req.keep_alive(false);
  shared_->metrics.count_request(route, method, status);
  parser_.reset();
  write(json_error(req, status, code, message), false);
}

void http_session::handle_request() {
  phase_ = phase::handling;
  stream_.expires_never();
  req_ = parser_->release();
  parser_.reset();
  started_ = clock::now();

  if (boost::beast::websocket::is_upgrade(req_) && upgrade()) return;
  auto match = shared_->routes->match(req_.method(), req_.target());
  route_ = match.name;
  responder res(
      executor_, std::move(match.params),
      [self = shared_from_this()](response r) { self->on_response(std::move(r)); },
      client_key(client_address(peer_, forwarded_for(req_), shared_->opts.proxies)));
  if (match.handler == nullptr) return res.send(router::not_routed(req_, match));
  try {
    (*match.handler)(req_, res);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for {} {} threw: {}", req_.method_string(), route_, e.what());
    res.send(json_error(req_, http::status::internal_server_error, "internal_error",
                        "internal server error"));
  } catch (...) {
    spdlog::error("http: handler for {} {} threw a non-standard exception", req_.method_string(),
                  route_);
    res.send(json_error(req_, http::status::internal_server_error, "internal_error",
                        "internal server error"));
  }
}

// Hands an upgrade request for a WebSocket path over, with the connection and its slot; false
// if the path has none.
bool http_session::upgrade() {
  const auto path = req_.target().substr(0, req_.target().find('?'));
  auto up = shared_->upgrades.find(path);
  if (up == shared_->upgrades.end()) return false;
  const auto client = client_address(peer_, forwarded_for(req_), shared_->opts.proxies);
  // A trusted proxy's connection becomes one client's socket: it counts for that client now.
  const auto key = client_key(client);
  if (shared_->limits->assign(*slot_, key) != connection_limits::refusal::none) {
    shared_->metrics.client_connections_rejected.inc();
    if (std::uint64_t unlogged = 0; shared_->limits->should_warn(unlogged)) {
      spdlog::warn(
          "http: {} (through {}) has {} connections open (http.max_connections_per_ip); "
          "answering 429 to more ({} such refusals not logged before this one)",
          key, remote_, shared_->opts.max_connections_per_client, unlogged);
    }
    shared_->metrics.count_request(up->first, req_.method(), http::status::too_many_requests);
    write(too_many_client_connections(req_), false);
    return true;
  }
  // The connection now belongs to the WebSocket side; this session only ends.
  shared_->metrics.count_request(up->first, req_.method(), http::status::switching_protocols);
  phase_ = phase::closing;
  up->second(std::move(stream_), std::move(req_), upgrade_context{client, std::move(slot_)});
  return true;
}

void http_session::on_response(response res) {
  if (phase_ != phase::handling) return;  // the responder guarantees one answer; be safe anyway
  const std::chrono::duration<double> elapsed = clock::now() - started_;
  shared_->metrics.record_request(route_, req_.method(), res.result(), elapsed.count());
  const bool keep_alive = req_.keep_alive() && res.keep_alive() && !stopping_;
  write(std::move(res), keep_alive);
}

void http_session::write(response res, bool keep_alive) {
  phase_ = phase::writing;
  res.keep_alive(keep_alive);
  if (res.find(http::field::server) == res.end()) res.set(http::field::server, "bellhop");
  try {
    res.prepare_payload();
  } catch (const std::exception& e) {
    // e.g. a body on a 204; the handler's bug, answered without throwing through Asio.
    spdlog::error("http: invalid response for {}: {}", route_, e.what());
    request req;
    req.keep_alive(keep_alive);
    res = json_error(req, http::status::internal_server_error, "internal_error",
                     "internal server error");
  }
  // A HEAD response carries the headers of the full response but no body.
  if (req_.method() == http::verb::head) res.body().clear();
  res_ = std::move(res);
  // The status line and fields in one reused string, the body as it is: one gathered write.
  // (Beast's serializer walks a buffers_cat_view per write, several times slower for small
  // answers; prepare_payload has set Content-Length, so the body needs no framing.)
  head_.clear();
  head_.append(res_.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
  char status[8];
  const auto end = std::to_chars(status, status + sizeof status, res_.result_int()).ptr;
  head_.append(status, end);
  head_.push_back(' ');
  head_.append(res_.reason());
  head_.append("\r\n");
  for (const auto& field : res_) {
    head_.append(field.name_string());
    head_.append(": ");
    head_.append(field.value());
    head_.append("\r\n");
  }
  head_.append("\r\n");
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head_), asio::buffer(res_.body())};
  stream_.expires_after(shared_->opts.write_timeout);
  asio::async_write(
      stream_, buffers,
      beast::bind_front_handler(&http_session::on_write, shared_from_this(), keep_alive));
}

void http_session::on_write(bool keep_alive, beast::error_code ec, std::size_t) {
  res_ = {};
  req_ = {};
  if (ec) {
    spdlog::debug("http: write to {} failed: {}", remote_, ec.message());
    return;
  }
  if (!keep_alive) return close();
  first_request_ = false;
  wait_for_request();
}

void http_session::close() {
  phase_ = phase::closing;
  std::make_shared<lingering_close>(std::move(stream_))->run();
}

}  // namespace bellhop::gateway
