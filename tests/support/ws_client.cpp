#include "support/ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace bellhop::test {

struct ws_client::impl {
  impl(bool reading, int receive_buffer) : reading_(reading), receive_buffer_(receive_buffer) {}

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
  std::vector<std::pair<std::string, std::string>> headers_;
};

ws_client::ws_client(bool reading, int receive_buffer)
    : impl_(std::make_unique<impl>(reading, receive_buffer)) {}

ws_client::~ws_client() {
  impl_->stop();
}

void ws_client::add_header(std::string name, std::string value) {
  impl_->headers_.emplace_back(std::move(name), std::move(value));
}

int ws_client::connect(std::uint16_t port, const std::string& target,
                       std::chrono::milliseconds timeout) {
  namespace beast = boost::beast;
  auto& s = *impl_;
  boost::system::error_code ec;
  auto& socket = beast::get_lowest_layer(s.ws_).socket();
  socket.open(boost::asio::ip::tcp::v4(), ec);
  if (ec) return 0;
  if (s.receive_buffer_ > 0)
    socket.set_option(boost::asio::socket_base::receive_buffer_size(s.receive_buffer_), ec);
  beast::get_lowest_layer(s.ws_).expires_after(timeout);
  std::promise<boost::system::error_code> connected;
  beast::get_lowest_layer(s.ws_).async_connect(
      boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port),
      [&](boost::system::error_code e) { connected.set_value(e); });
  s.thread_ = std::thread([&s] { s.ioc_.run(); });
  if (connected.get_future().get()) return 0;
  if (!s.headers_.empty()) {
    s.ws_.set_option(beast::websocket::stream_base::decorator(
        [headers = s.headers_](beast::websocket::request_type& req) {
          for (const auto& [name, value] : headers) req.set(name, value);
        }));
  }
  std::promise<boost::system::error_code> shaken;
  boost::asio::post(s.ioc_, [&] {
    s.ws_.async_handshake(s.response_, "127.0.0.1:" + std::to_string(port), target,
                          [&](boost::system::error_code e) { shaken.set_value(e); });
  });
  ec = shaken.get_future().get();
  beast::get_lowest_layer(s.ws_).expires_never();
  if (ec) {
    s.refusal_body_ = s.response_.body();
    return s.response_.result_int() == 101 ? 0 : static_cast<int>(s.response_.result_int());
  }
  if (s.reading_) boost::asio::post(s.ioc_, [&s] { s.read(); });
  return 101;
}

std::string ws_client::refusal_body() const {
  return impl_->refusal_body_;
}

bool ws_client::send(std::string text) {
  auto& s = *impl_;
  std::promise<boost::system::error_code> done;
  boost::asio::post(s.ioc_, [&] {
    s.ws_.text(true);
    s.ws_.async_write(boost::asio::buffer(text),
                      [&](boost::system::error_code e, std::size_t) { done.set_value(e); });
  });
  auto f = done.get_future();
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return false;
  return !f.get();
}

std::optional<std::string> ws_client::receive(std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  std::unique_lock lock(s.mutex_);
  s.cv_.wait_for(lock, timeout, [&] { return !s.frames_.empty() || s.ended_; });
  if (s.frames_.empty()) return std::nullopt;
  auto f = std::move(s.frames_.front());
  s.frames_.pop_front();
  return f;
}

std::optional<int> ws_client::wait_closed(std::chrono::milliseconds timeout) {
  auto& s = *impl_;
  std::unique_lock lock(s.mutex_);
  if (!s.cv_.wait_for(lock, timeout, [&] { return s.ended_; })) return std::nullopt;
  return s.close_code_;
}

void ws_client::close() {
  auto& s = *impl_;
  std::promise<void> done;
  boost::asio::post(s.ioc_, [&] {
    s.ws_.async_close(boost::beast::websocket::close_code::normal,
                      [&](boost::system::error_code) { done.set_value(); });
  });
  done.get_future().wait_for(std::chrono::seconds(5));
}

void ws_client::drop() {
  auto& s = *impl_;
  boost::asio::post(s.ioc_, [&s] {
    boost::system::error_code ignored;
    boost::beast::get_lowest_layer(s.ws_).socket().close(ignored);
  });
}

}  // namespace bellhop::test
