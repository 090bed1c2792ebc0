#pragma once

// A WebSocket client for tests: Beast on a private io_context thread, a reader that queues
// every text frame, and blocking calls with deadlines, so a broken server fails a test instead
// of hanging it. Beast's WebSocket stream lives in ws_client.cpp, compiled once for all tests.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bellhop::test {

class ws_client {
 public:
  // reading = false: never reads (a dashboard that stopped reading); receive_buffer > 0 sets
  // SO_RCVBUF before connecting, so the server's writes back up sooner.
  explicit ws_client(bool reading = true, int receive_buffer = 0);
  ~ws_client();
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  // A header sent with the upgrade request (Cookie, Origin); call before connect().
  void add_header(std::string name, std::string value);

  // Connects and upgrades. Returns 101 on success, else the HTTP status of the refusal
  // (body in refusal_body()), or 0 when the connection itself failed.
  int connect(std::uint16_t port, const std::string& target,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));

  std::string refusal_body() const;

  bool send(std::string text);

  // The next text frame, or nullopt on timeout or once the connection has ended.
  std::optional<std::string> receive(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // Waits for the connection to end (close frame or error); the close code, 0 without one.
  std::optional<int> wait_closed(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  void close();

  // Cuts the TCP connection without a close frame (a dashboard losing Wi-Fi).
  void drop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace bellhop::test
