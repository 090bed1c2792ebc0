#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <future>
#include <thread>

namespace bellhop::test {

// An io_context on its own thread, standing in for the gateway's Asio threads.
class io_thread {
 public:
  io_thread() : guard_(boost::asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}
  ~io_thread() {
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }
  io_thread(const io_thread&) = delete;
  io_thread& operator=(const io_thread&) = delete;

  boost::asio::any_io_executor executor() { return ioc_.get_executor(); }
  boost::asio::io_context& context() { return ioc_; }
  // Returns once every handler queued before the call has run.
  void drain() {
    std::promise<void> p;
    boost::asio::post(ioc_, [&p] { p.set_value(); });
    p.get_future().wait();
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

}  // namespace bellhop::test
