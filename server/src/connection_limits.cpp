#include "bellhop/server/connection_limits.hpp"

namespace bellhop::gateway {

connection_limits::slot::~slot() {
  owner_->release(client_);
}

std::shared_ptr<connection_limits> connection_limits::make(std::size_t max_total,
                                                           std::size_t max_per_client,
                                                           gauge* open) {
  return std::shared_ptr<connection_limits>(new connection_limits(max_total, max_per_client, open));
}

std::shared_ptr<connection_limits::slot> connection_limits::acquire(const std::string& client,
                                                                    refusal& why) {
  {
    std::lock_guard lock(mutex_);
    if (open_ >= max_total_) {
      why = refusal::total;
      return nullptr;
    }
    if (!client.empty()) {
      auto& n = per_client_[client];
      if (n >= max_per_client_) {
        why = refusal::per_client;
        return nullptr;
      }
      ++n;
    }
    ++open_;
  }
  if (gauge_) gauge_->inc();
  why = refusal::none;
  std::shared_ptr<slot> s(new slot(shared_from_this()));
  s->client_ = client;
  return s;
}

connection_limits::refusal connection_limits::assign(slot& s, const std::string& client) {
  if (!s.client_.empty() || client.empty()) return refusal::none;
  std::lock_guard lock(mutex_);
  auto& n = per_client_[client];
  if (n >= max_per_client_) {
    if (n == 0) per_client_.erase(client);
    return refusal::per_client;
  }
  ++n;
  s.client_ = client;
  return refusal::none;
}

void connection_limits::release(const std::string& client) {
  {
    std::lock_guard lock(mutex_);
    --open_;
    if (!client.empty()) {
      auto it = per_client_.find(client);
      if (it != per_client_.end() && --it->second == 0) per_client_.erase(it);
    }
  }
  if (gauge_) gauge_->dec();
}

std::size_t connection_limits::open() const {
  std::lock_guard lock(mutex_);
  return open_;
}

std::size_t connection_limits::open_for(const std::string& client) const {
  std::lock_guard lock(mutex_);
  auto it = per_client_.find(client);
  return it == per_client_.end() ? 0 : it->second;
}

bool connection_limits::should_warn(std::uint64_t& unlogged) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto next = next_warn_ns_.load(std::memory_order_relaxed);
  if (now < next || !next_warn_ns_.compare_exchange_strong(
                        next, now + std::chrono::nanoseconds(std::chrono::seconds(10)).count())) {
    unlogged_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  unlogged = unlogged_.exchange(0, std::memory_order_relaxed);
  return true;
}

}  // namespace bellhop::gateway
