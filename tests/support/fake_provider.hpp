#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bellhop::test {

// A provider API stand-in for tests: an HTTP/1.1 server on 127.0.0.1 (free port, keep-alive,
// a thread per connection) that records every request and answers with what `respond` says.
struct fake_request {
  std::string method, target, body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::chrono::steady_clock::time_point at;
};
struct fake_response {
  fake_response(int s = 200, std::string b = {}, std::map<std::string, std::string> h = {})
      : status(s), body(std::move(b)), headers(std::move(h)) {}
  int status;
  std::string body;
  std::map<std::string, std::string> headers;
};

class fake_provider {
 public:
  using responder = std::function<fake_response(const fake_request&, std::size_t index)>;
  explicit fake_provider(responder respond);
  ~fake_provider();
  fake_provider(const fake_provider&) = delete;
  fake_provider& operator=(const fake_provider&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<fake_request> requests() const;
  std::size_t count() const;
  std::size_t connections() const;  // accepted so far
  void set_responder(responder r);

 private:
  void accept_loop();
  void serve(int fd);

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  responder respond_;
  std::vector<fake_request> requests_;
  std::vector<int> open_fds_;
  std::size_t accepted_ = 0;
  std::thread acceptor_;
  std::vector<std::thread> workers_;
};

}  // namespace bellhop::test
