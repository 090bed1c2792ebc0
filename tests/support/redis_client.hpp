#pragma once

#include <string>

#include "bellhop/broker/broker.hpp"
#include "support/io_thread.hpp"

namespace bellhop::test {

// A synchronous Redis client for tests that set up and read Redis state directly (Lua scripts,
// what a flow left behind): a started broker and the io thread its replies run on.
class redis_client {
 public:
  explicit redis_client(const broker::redis_endpoint& ep);
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  // Runs one command and waits for its reply; a failed command fails the test.
  broker::reply run(broker::command cmd);
  // As run(), for a command that is meant to fail: the caller checks the reply.
  broker::reply try_run(broker::command cmd);
  // The reply of run() as text: a string, an integer in decimal, or "<nil>".
  std::string get(broker::command cmd);

 private:
  io_thread io_;
  broker::broker broker_;
};

}  // namespace bellhop::test
