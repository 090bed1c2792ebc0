#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace bellhop::gateway {

// Where password checks run: Argon2id takes ~64 MiB and a tenth of a second of one core, so it
// never runs on a network thread. A small pool (its own threads) with a bounded queue: a check
// beyond `max_pending` is refused at once (the route answers 503) instead of piling up memory.
class password_pool {
 public:
  password_pool(std::size_t threads, std::size_t max_pending);
  ~password_pool();  // waits for the checks in progress
  password_pool(const password_pool&) = delete;
  password_pool& operator=(const password_pool&) = delete;

  // Whether `password` matches `stored` (an Argon2id string); `stored` empty (no such user)
  // checks against a dummy hash, so an unknown name costs as long as a known one, and answers
  // false. `done` runs once, on `ex`. Returns false (and never calls `done`) when the queue is
  // full.
  bool verify(std::string stored, std::string password, boost::asio::any_io_executor ex,
              std::function<void(bool)> done);

 private:
  const std::string& dummy();  // on a pool thread

  boost::asio::thread_pool pool_;
  const std::size_t max_pending_;
  std::atomic<std::size_t> pending_{0};
  std::once_flag dummy_once_;
  std::string dummy_;
};

}  // namespace bellhop::gateway
