#include "bellhop/server/responder.hpp"

#include <atomic>
#include <boost/asio/post.hpp>

#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {

class responder::state {
 public:
  state(boost::asio::any_io_executor executor, path_params params, completion on_complete,
        std::string client)
      : executor_(std::move(executor)),
        params_(std::move(params)),
        on_complete_(std::move(on_complete)),
        client_(std::move(client)) {}

  state(const state&) = delete;
  state& operator=(const state&) = delete;

  ~state() {
    // Last copy gone without an answer: don't leave the client waiting forever.
    if (!sent_.load(std::memory_order_acquire)) {
      request req;
      req.keep_alive(false);
      deliver(json_error(req, http::status::internal_server_error, "internal_error",
                         "the request handler did not respond"));
    }
  }

  void send(response res) {
    if (sent_.exchange(true, std::memory_order_acq_rel)) return;
    deliver(std::move(res));
  }

  const boost::asio::any_io_executor& executor() const { return executor_; }
  const path_params& params() const { return params_; }
  const std::string& client() const { return client_; }

 private:
  // Only the one caller that flipped sent_ (or the destructor) gets here. Moving the completion
  // out releases what it holds (the connection) even while handler copies of the responder live.
  void deliver(response res) {
    boost::asio::post(executor_, [complete = std::move(on_complete_),
                                  res = std::move(res)]() mutable { complete(std::move(res)); });
  }

  boost::asio::any_io_executor executor_;
  path_params params_;
  completion on_complete_;
  std::string client_;
  std::atomic<bool> sent_{false};
};

responder::responder(boost::asio::any_io_executor executor, path_params params,
                     completion on_complete, std::string client)
    : state_(std::make_shared<state>(std::move(executor), std::move(params), std::move(on_complete),
                                     std::move(client))) {}

void responder::send(response res) const {
  state_->send(std::move(res));
}

boost::asio::any_io_executor responder::executor() const {
  return state_->executor();
}

std::string_view responder::param(std::string_view name) const {
  for (const auto& [key, value] : state_->params()) {
    if (key == name) return value;
  }
  return {};
}

const path_params& responder::params() const {
  return state_->params();
}

const std::string& responder::client() const {
  return state_->client();
}

}  // namespace bellhop::gateway
