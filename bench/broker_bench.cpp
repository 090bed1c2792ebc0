// Broker throughput and latency: N caller threads send LPUSH through bellhop's broker, each
// keeping a window of commands in flight (closed loop). Prints one machine-readable line.
//
//   broker_bench --url redis://127.0.0.1:6379 --threads 8 --window 64 --requests 400000
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bellhop/broker/broker.hpp"

namespace asio = boost::asio;
using bellhop::broker::broker;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string url = "redis://127.0.0.1:6379";
  int threads = 8;
  int window = 64;
  long requests = 400000;
  int payload = 3;  // redis-benchmark's default data size
  int io_threads = 2;
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--url") o.url = v;
    else if (k == "--threads") o.threads = std::stoi(v);
    else if (k == "--window") o.window = std::stoi(v);
    else if (k == "--requests") o.requests = std::stol(v);
    else if (k == "--payload") o.payload = std::stoi(v);
    else if (k == "--io-threads") o.io_threads = std::stoi(v);
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return o;
}

// One caller: keeps `window` LPUSHes in flight on its own strand until its share is sent.
class caller {
 public:
  caller(broker& b, asio::io_context& ioc, long total, int window, std::string payload)
      : broker_(b), strand_(asio::make_strand(ioc)), total_(total), window_(window),
        payload_(std::move(payload)) {
    latencies_.reserve(static_cast<std::size_t>(total));
  }

  void start() {
    asio::post(strand_, [this] {
      for (int i = 0; i < window_ && sent_ < total_; ++i) send();
    });
  }

  void wait() {
    std::unique_lock lock(m_);
    cv_.wait(lock, [&] { return done_; });
  }

  std::vector<double>& latencies() { return latencies_; }
  long errors() const { return errors_; }

 private:
  void send() {
    ++sent_;
    auto started = clock_type::now();
    broker_.post({"LPUSH", "bench:broker", payload_}, strand_,
                 [this, started](boost::system::error_code ec, bellhop::broker::reply) {
                   latencies_.push_back(
                       std::chrono::duration<double, std::micro>(clock_type::now() - started)
                           .count());
                   if (ec) ++errors_;
                   if (sent_ < total_) {
                     send();
                   } else if (static_cast<long>(latencies_.size()) == total_) {
                     std::lock_guard lock(m_);
                     done_ = true;
                     cv_.notify_all();
                   }
                 });
  }

  broker& broker_;
  asio::strand<asio::io_context::executor_type> strand_;
  long total_;
  int window_;
  std::string payload_;
  long sent_ = 0;
  long errors_ = 0;
  std::vector<double> latencies_;
  std::mutex m_;
  std::condition_variable cv_;
  bool done_ = false;
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(idx), v.end());
  return v[idx];
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  auto ep = bellhop::broker::parse_redis_url(o.url);
  if (!ep) {
    std::fprintf(stderr, "%s\n", ep.error().message.c_str());
    return 2;
  }
  bellhop::broker::broker_options bo;
  bo.endpoint = *ep;
  broker b(bo);
  b.start();
  for (int i = 0; i < 200 && !b.ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!b.ready()) {
    std::fprintf(stderr, "cannot connect to %s\n", ep->redacted().c_str());
    return 1;
  }

  asio::io_context ioc;
  auto guard = asio::make_work_guard(ioc);
  std::vector<std::thread> io;
  for (int i = 0; i < o.io_threads; ++i) io.emplace_back([&] { ioc.run(); });

  std::vector<std::unique_ptr<caller>> callers;
  const long share = o.requests / o.threads;
  for (int t = 0; t < o.threads; ++t) {
    callers.push_back(std::make_unique<caller>(b, ioc, share, o.window, std::string(o.payload, 'x')));
  }
  const auto started = clock_type::now();
  for (auto& c : callers) c->start();
  for (auto& c : callers) c->wait();
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();

  std::vector<double> all;
  long errors = 0;
  for (auto& c : callers) {
    all.insert(all.end(), c->latencies().begin(), c->latencies().end());
    errors += c->errors();
  }
  const double total = static_cast<double>(all.size());
  std::printf(
      "broker_bench requests=%ld threads=%d window=%d seconds=%.3f rps=%.0f p50_us=%.1f "
      "p99_us=%.1f p999_us=%.1f errors=%ld\n",
      static_cast<long>(total), o.threads, o.window, seconds, total / seconds,
      percentile(all, 0.50), percentile(all, 0.99), percentile(all, 0.999), errors);

  guard.reset();
  for (auto& t : io) t.join();
  b.stop();
  return errors == 0 ? 0 : 1;
}
