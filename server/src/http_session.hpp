#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "bellhop/server/http_types.hpp"
#include "bellhop/server/connection_limits.hpp"

namespace bellhop::gateway {

struct server_shared;

// One HTTP/1.1 connection, on its own strand. Requests are handled one at a time:
//   waiting  (idle between requests; closes after idle_timeout, or at once on shutdown)
//   reading  (first byte seen; the whole request must arrive within read_timeout)
//   handling (no timeout: the handler's time, not the client's)
//   writing  (write_timeout), then waiting again or a lingering close.
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  // `slot`: the connection's place under the connection limits, held until the socket closes
  // (handed on to the WebSocket side on an upgrade).
  http_session(boost::asio::ip::tcp::socket&& socket, std::shared_ptr<server_shared> shared,
               std::shared_ptr<connection_limits::slot> slot);
  ~http_session();
  http_session(const http_session&) = delete;
  http_session& operator=(const http_session&) = delete;

  // Registers with the tracker and starts reading; during shutdown the socket just closes.
  void start();
  // Thread-safe. Idle: close now. Otherwise finish the current request with Connection: close.
  void shutdown();

 private:
  enum class phase { waiting, reading, handling, writing, closing };
  using clock = std::chrono::steady_clock;

  void wait_for_request();
  void on_first_bytes(boost::beast::error_code ec, std::size_t bytes);
  void read_header();
  bool parse_buffered();
  void on_header(boost::beast::error_code ec, std::size_t bytes);
  void read_body();
  void on_request(boost::beast::error_code ec, std::size_t bytes);
  void on_read_error(boost::beast::error_code ec);
  bool framing_ok();
  void reject(http::status status, std::string_view code, const std::string& message);
  void handle_request();
  bool upgrade();
  void on_response(response res);
  void write(response res, bool keep_alive);
  void on_write(bool keep_alive, boost::beast::error_code ec, std::size_t bytes);
  void close();
  void on_shutdown();

  boost::beast::tcp_stream stream_;
  const boost::asio::any_io_executor executor_;  // the strand; readable from any thread
  const std::shared_ptr<server_shared> shared_;
  const std::string remote_;  // for log lines
  const boost::asio::ip::address peer_;
  std::shared_ptr<connection_limits::slot> slot_;
  boost::beast::flat_buffer buffer_;
  std::optional<std::uint64_t> id_;
  phase phase_ = phase::waiting;
  bool stopping_ = false;
  bool first_request_ = true;
  clock::time_point deadline_;  // for reading the current request
  std::optional<http::request_parser<http::string_body>> parser_;
  request req_;  // kept until its response is written: handlers get it by reference
  std::string_view route_;
  clock::time_point started_;
  response res_;      // being written
  std::string head_;  // its status line and fields, serialized; reused
};

}  // namespace bellhop::gateway
