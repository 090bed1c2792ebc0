#include "password_pool.hpp"

#include <boost/asio/post.hpp>

#include "bellhop/console/users.hpp"
#include "bellhop/contract/secrets.hpp"

namespace bellhop::gateway {

password_pool::password_pool(std::size_t threads, std::size_t max_pending)
    : pool_(threads), max_pending_(max_pending) {
  // The dummy hash is made before the first sign-in, so the first unknown name is no slower.
  boost::asio::post(pool_, [this] { dummy(); });
}

password_pool::~password_pool() {
  pool_.join();
}

const std::string& password_pool::dummy() {
  std::call_once(dummy_once_, [this] {
    // A password nobody knows: the hash has the same cost parameters as real ones.
    dummy_ = hash_password(contract::random_secret().value_or("bellhop-dummy-password"))
                 .value_or(std::string());
  });
  return dummy_;
}

bool password_pool::verify(std::string stored, std::string password,
                           boost::asio::any_io_executor ex, std::function<void(bool)> done) {
  if (pending_.fetch_add(1) >= max_pending_) {
    pending_.fetch_sub(1);
    return false;
  }
  boost::asio::post(pool_, [this, stored = std::move(stored), password = std::move(password), ex,
                            done = std::move(done)]() mutable {
    const bool known = !stored.empty();
    bool ok = verify_password(known ? stored : dummy(), password);
    ok = ok && known;
    wipe(password);
    pending_.fetch_sub(1);
    boost::asio::post(ex, [ok, done = std::move(done)] { done(ok); });
  });
  return true;
}

}  // namespace bellhop::gateway
