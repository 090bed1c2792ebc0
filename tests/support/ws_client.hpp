#pragma once

// A WebSocket client for tests: Beast on a private io_context thread, a reader that queues
// every text frame, and blocking calls with deadlines, so a broken server fails a test instead
// of hanging it.
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace bellhop::test {

class ws_client {
 public:
  // reading = false: never reads (a dashboard that stopped reading); receive_buffer > 0 sets
  // SO_RCVBUF before connecting, so the server's writes back up sooner.
  explicit ws_client(bool reading = true, int receive_buffer = 0)
      : reading_(reading), receive_buffer_(receive_buffer) {}
  ~ws_client() { stop(); }
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // Connects and upgrades. Returns 101 on success, else the HTTP status of the refusal
  // (body in refusal_body()), or 0 when the connection itself failed.
  int connect(std::uint16_t port, const std::string& target,
              std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    namespace beast = boost::beast;
    namespace websocket = beast::websocket;
    boost::system::error_code ec;
    auto& socket = beast::get_lowest_layer(ws_).socket();
    socket.open(boost::asio::ip::tcp::v4(), ec);
    if (ec) return 0;
    if (receive_buffer_ > 0)
      socket.set_option(boost::asio::socket_base::receive_buffer_size(receive_buffer_), ec);
    beast::get_lowest_layer(ws_).expires_after(timeout);
    std::promise<boost::system::error_code> connected;
    beast::get_lowest_layer(ws_).async_connect(
        boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
        [&](boost::system::error_code e) { connected.set_value(e); });
    thread_ = std::thread([this] { ioc_.run(); });
    if (connected.get_future().get()) return 0;
    std::promise<boost::system::error_code> shaken;
    boost::asio::post(ioc_, [&] {
      ws_.async_handshake(response_, "127.0.0.1:" + std::to_string(port), target,
                          [&](boost::system::error_code e) { shaken.set_value(e); });
    });
    ec = shaken.get_future().get();
    beast::get_lowest_layer(ws_).expires_never();
    if (ec) {
      refusal_body_ = response_.body();
      return response_.result_int() == 101 ? 0 : static_cast<int>(response_.result_int());
    }
    if (reading_) boost::asio::post(ioc_, [this] { read(); });
    return 101;
  }

  std::string refusal_body() const { return refusal_body_; }

  bool send(std::string text) {
    std::promise<boost::system::error_code> done;
    boost::asio::post(ioc_, [&] {
      ws_.text(true);
      ws_.async_write(boost::asio::buffer(text),
                      [&](boost::system::error_code e, std::size_t) { done.set_value(e); });
    });
    auto f = done.get_future();
    if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return false;
    return !f.get();
  }

  // The next text frame, or nullopt on timeout or once the connection has ended.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !frames_.empty() || ended_; });
    if (frames_.empty()) return std::nullopt;
    auto f = std::move(frames_.front());
    frames_.pop_front();
    return f;
  }

  // Waits for the connection to end (close frame or error); the close code, 0 without one.
  std::optional<int> wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, timeout, [&] { return ended_; })) return std::nullopt;
    return close_code_;
  }

  void close() {
    std::promise<void> done;
    boost::asio::post(ioc_, [&] {
      ws_.async_close(boost::beast::websocket::close_code::normal,
                      [&](boost::system::error_code) { done.set_value(); });
    });
    done.get_future().wait_for(std::chrono::seconds(5));
  }

  // Cuts the TCP connection without a close frame (a dashboard losing Wi-Fi).
  void drop() {
    boost::asio::post(ioc_, [this] {
      boost::system::error_code ignored;
      boost::beast::get_lowest_layer(ws_).socket().close(ignored);
    });
  }

 private:
  void read() {
    ws_.async_read(buffer_, [this](boost::system::error_code ec, std::size_t) {
      std::lock_guard lock(mutex_);
      if (ec) {
        ended_ = true;
        if (ec == boost::beast::websocket::error::closed) close_code_ = ws_.reason().code;
        cv_.notify_all();
        return;
      }
      frames_.push_back(boost::beast::buffers_to_string(buffer_.data()));
      buffer_.consume(buffer_.size());
      cv_.notify_all();
      read();
    });
  }

  void stop() {
    if (!thread_.joinable()) return;
    boost::asio::post(ioc_, [this] {
      boost::system::error_code ignored;
      boost::beast::get_lowest_layer(ws_).socket().close(ignored);
    });
    ioc_.stop();
    thread_.join();
  }

  const bool reading_;
  const int receive_buffer_;
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{
      ioc_.get_executor()};  // run() waits for posts until stop()
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_{ioc_};
  boost::beast::websocket::response_type response_;
  boost::beast::flat_buffer buffer_;
  std::string refusal_body_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> frames_;
  bool ended_ = false;
  int close_code_ = 0;
};

}  // namespace bellhop::test
