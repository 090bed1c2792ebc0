#pragma once

#include <array>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>

namespace bellhop::gateway {

// Closes a connection after its last response without losing that response: closing a socket
// with unread input makes the kernel send RST, which can discard data the peer has not read
// yet (e.g. a 413 sent before the oversized body arrived). So: shut down the sending side,
// discard input until the peer closes or a short deadline passes, then close.
class lingering_close : public std::enable_shared_from_this<lingering_close> {
 public:
  explicit lingering_close(boost::beast::tcp_stream&& stream);
  void run();

 private:
  void read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);

  boost::beast::tcp_stream stream_;
  std::array<char, 2048> discard_;
};

}  // namespace bellhop::gateway
