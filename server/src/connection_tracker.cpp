#include "connection_tracker.hpp"

#include <boost/asio/post.hpp>

#include "http_session.hpp"

namespace bellhop::gateway {

connection_tracker::connection_tracker(boost::asio::io_context& ioc) : ioc_(ioc) {}

std::optional<std::uint64_t> connection_tracker::add(std::weak_ptr<http_session> session) {
  std::lock_guard lock(mutex_);
  if (shutting_down_) return std::nullopt;
  const auto id = next_id_++;
  sessions_.emplace(id, std::move(session));
  active_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

void connection_tracker::remove(std::uint64_t id) {
  std::vector<std::function<void()>> done;
  {
    std::lock_guard lock(mutex_);
    if (sessions_.erase(id) == 0) return;
    active_.fetch_sub(1, std::memory_order_relaxed);
    if (shutting_down_ && sessions_.empty()) done.swap(done_);
  }
  for (auto& fn : done) boost::asio::post(ioc_, std::move(fn));
}

bool connection_tracker::shutting_down() const {
  std::lock_guard lock(mutex_);
  return shutting_down_;
}

void connection_tracker::begin_shutdown(std::function<void()> done) {
  std::vector<std::shared_ptr<http_session>> sessions;
  bool none_open = false;
  {
    std::lock_guard lock(mutex_);
    shutting_down_ = true;
    none_open = sessions_.empty();
    if (!none_open) {
      if (done) done_.push_back(std::move(done));
      for (const auto& [id, weak] : sessions_) {
        if (auto s = weak.lock()) sessions.push_back(std::move(s));
      }
    }
  }
  if (none_open && done) boost::asio::post(ioc_, std::move(done));
  // Outside the lock: a session released here may end and call remove().
  for (const auto& s : sessions) s->shutdown();
}

}  // namespace bellhop::gateway
