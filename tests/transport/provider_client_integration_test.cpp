// provider_client's pool of kept-alive connections, against a local HTTP server that counts the
// connections it accepts.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <utility>
#include <vector>

#include "bellhop/transport/provider_client.hpp"
#include "support/fake_provider.hpp"
#include "support/io_thread.hpp"

namespace bellhop::gateway {
namespace {

using namespace std::chrono_literals;

// A server that answers no request of a wave until the whole wave has arrived: the wave's calls
// are all in flight at once, each on a connection of its own.
class waves {
 public:
  explicit waves(std::size_t size)
      : size_(size), provider_([this](const test::fake_request&, std::size_t index) {
          std::unique_lock lock(mu_);
          const std::size_t wave_end = (index / size_ + 1) * size_;
          ++arrived_;
          cv_.notify_all();
          cv_.wait_for(lock, 10s, [&] { return arrived_ >= wave_end; });
          return test::fake_response(200, R"({"ok":true})");
        }) {}

  // Makes one wave of calls on `client` and waits for their answers.
  void run(provider_client& client, test::io_thread& io) {
    std::vector<std::future<provider_response>> answers;
    for (std::size_t i = 0; i < size_; ++i) {
      auto done = std::make_shared<std::promise<provider_response>>();
      answers.push_back(done->get_future());
      channels::http_call call;
      call.url = provider_.url() + "/v1/send";
      call.body = "{}";
      client.call(call, io.executor(), [done](provider_response r) { done->set_value(r); });
    }
    for (auto& a : answers) {
      ASSERT_EQ(a.wait_for(20s), std::future_status::ready);
      const auto r = a.get();
      EXPECT_EQ(r.status, 200) << r.error;
    }
  }

  std::size_t connections() const { return provider_.connections(); }

 private:
  const std::size_t size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t arrived_ = 0;
  test::fake_provider provider_;
};

// The connections the server has accepted after a first and a second wave of six calls, from a
// client that keeps `idle_cap` idle connections per origin.
std::pair<std::size_t, std::size_t> connections_after_two_waves(std::size_t idle_cap) {
  test::io_thread io;
  waves server(6);
  provider_client client(5s, idle_cap);
  server.run(client, io);
  const auto first = server.connections();
  server.run(client, io);
  return {first, server.connections()};
}

TEST(ProviderClient, KeepsAsManyIdleConnectionsAsItWasToldAndReusesThem) {
  const auto [first, second] = connections_after_two_waves(6);
  EXPECT_EQ(first, 6u);
  EXPECT_EQ(second, 6u) << "the second wave reuses the six connections of the first";
}

TEST(ProviderClient, ConnectionsBeyondTheIdleCapAreClosedAndTheNextWaveOpensNewOnes) {
  const auto [first, second] = connections_after_two_waves(3);
  EXPECT_EQ(first, 6u);
  EXPECT_EQ(second, 9u) << "three kept and reused, three opened again";
}

}  // namespace
}  // namespace bellhop::gateway
