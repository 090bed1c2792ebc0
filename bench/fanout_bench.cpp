// Fan-out benchmark of GET /v1/realtime: many dashboards, events at a fixed rate, measured from
// the HTTP POST that creates an event to each dashboard receiving it.
//
//   fanout_bench --port 8080 --token JWT --key ADAPTER_KEY --bellhop-pid PID
//                [--connections 5000] [--properties 100] [--rate 1000] [--duration-s 10]
//
// 1. Reads bellhop's resident memory, opens --connections WebSockets (token in the URL), each
//    subscribing to property "fanout-<i % properties>", waits until every one is subscribed and
//    idle for 2 s, reads the resident memory again: (after - before) / connections is the
//    memory per idle dashboard (its kernel socket buffers are not in it).
// 2. Posts --rate messages per second (open loop: message k is due at t0 + k/rate, whatever
//    the server does) round-robin over the properties for --duration-s, from 4 threads with
//    keep-alive connections. Each message's text is "fanout:<k>"; a dashboard receiving event
//    k records now - (time message k was due): publish-to-receive latency including the HTTP
//    ingest, Redis and the fan-out, without coordinated omission.
// 3. Prints one line: deliveries/s, latency p50/p99/p99.9/max, deliveries missing (expected =
//    events x dashboards of the property), and bytes per idle connection.
// Loopback only.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

struct options {
  std::uint16_t port = 0;
  std::string token, key;
  int bellhop_pid = 0;
  int connections = 5000, properties = 100, rate = 1000, duration_s = 10;
};

long rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

// Due times of the messages, written by the producer before sending, read by the clients.
struct schedule {
  explicit schedule(std::size_t n) : due_ns(n) {}
  std::vector<std::atomic<std::int64_t>> due_ns;
};

class dashboard : public std::enable_shared_from_this<dashboard> {
 public:
  dashboard(asio::io_context& ioc, const options& o, int index, schedule& s,
            std::atomic<int>& subscribed, std::vector<std::int64_t>& latencies, std::mutex& m)
      : ws_(ioc), o_(o), index_(index), schedule_(s), subscribed_(subscribed),
        latencies_(latencies), mutex_(m) {}

  void start() {
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), o_.port),
        [self = shared_from_this()](beast::error_code ec) {
          if (ec) return self->fail("connect", ec);
          self->ws_.async_handshake("127.0.0.1", "/v1/realtime?token=" + self->o_.token,
                                    [self](beast::error_code e) {
                                      if (e) return self->fail("handshake", e);
                                      self->subscribe();
                                    });
        });
  }
  std::uint64_t received() const { return received_; }

 private:
  void subscribe() {
    out_ = R"({"type":"subscribe","property_id":"fanout-)" +
           std::to_string(index_ % o_.properties) + "\"}";
    ws_.text(true);
    ws_.async_write(asio::buffer(out_), [self = shared_from_this()](beast::error_code ec,
                                                                    std::size_t) {
      if (ec) return self->fail("subscribe", ec);
      self->read();
    });
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->fail("read", ec);
      self->on_frame();
      self->read();
    });
  }

  void on_frame() {
    const auto now = clock_type::now().time_since_epoch().count();
    const std::string_view text(static_cast<const char*>(buffer_.cdata().data()),
                                buffer_.size());
    if (text.find(R"("type":"subscribed")") != std::string_view::npos) {
      ++subscribed_;
    } else if (auto at = text.find(R"("text":"fanout:)"); at != std::string_view::npos) {
      const auto k = std::strtoull(text.data() + at + 15, nullptr, 10);
      if (k < schedule_.due_ns.size()) {
        const auto due = schedule_.due_ns[k].load(std::memory_order_acquire);
        ++received_;
        std::lock_guard lock(mutex_);
        latencies_.push_back(due > 0 ? now - due : 0);
      }
    }
    buffer_.consume(buffer_.size());
  }

  void fail(const char* what, beast::error_code ec) {
    if (!failed_) std::fprintf(stderr, "dashboard %d: %s: %s\n", index_, what, ec.message().c_str());
    failed_ = true;
  }

  websocket::stream<beast::tcp_stream> ws_;
  const options& o_;
  const int index_;
  schedule& schedule_;
  std::atomic<int>& subscribed_;
  std::vector<std::int64_t>& latencies_;
  std::mutex& mutex_;
  beast::flat_buffer buffer_;
  std::string out_;
  std::uint64_t received_ = 0;
  bool failed_ = false;
};

// One producer thread: messages k = first, first + step, ... on a keep-alive connection.
void produce(const options& o, schedule& s, clock_type::time_point t0, int first, int step,
             int total, std::atomic<int>& errors) {
  asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  auto connect = [&] {
    beast::error_code ec;
    stream.socket().close(ec);
    stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), o.port), ec);
    stream.socket().set_option(tcp::no_delay(true), ec);
    return !ec;
  };
  connect();
  for (int k = first; k < total; k += step) {
    const auto due = t0 + std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 * k / o.rate));
    std::this_thread::sleep_until(due);
    s.due_ns[static_cast<std::size_t>(k)].store(due.time_since_epoch().count(),
                                                std::memory_order_release);
    http::request<http::string_body> req{http::verb::post, "/v1/messages/inbound", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, "Bearer " + o.key);
    req.set(http::field::content_type, "application/json");
    req.body() = R"({"property_id":"fanout-)" + std::to_string(k % o.properties) +
                 R"(","channel":"webchat","external_id":"fanout-)" + std::to_string(k) +
                 "-" + std::to_string(t0.time_since_epoch().count()) +
                 R"(","from":"guest-)" + std::to_string(k % 997) + R"(","text":"fanout:)" +
                 std::to_string(k) + "\"}";
    req.prepare_payload();
    beast::error_code ec;
    http::write(stream, req, ec);
    http::response<http::string_body> res;
    if (!ec) http::read(stream, buffer, res, ec);
    if (ec || res.result_int() != 202) {
      ++errors;
      connect();
    }
  }
}

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") o.port = static_cast<std::uint16_t>(std::stoi(v));
    else if (k == "--token") o.token = v;
    else if (k == "--key") o.key = v;
    else if (k == "--bellhop-pid") o.bellhop_pid = std::stoi(v);
    else if (k == "--connections") o.connections = std::stoi(v);
    else if (k == "--properties") o.properties = std::stoi(v);
    else if (k == "--rate") o.rate = std::stoi(v);
    else if (k == "--duration-s") o.duration_s = std::stoi(v);
    else {
      std::fprintf(stderr, "fanout_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  if (!o.port || o.token.empty() || o.key.empty() || o.connections < 1 || o.properties < 1 ||
      o.rate < 1 || o.duration_s < 1) {
    std::fprintf(stderr,
                 "usage: fanout_bench --port P --token JWT --key KEY [--bellhop-pid PID] "
                 "[--connections N] [--properties N] [--rate R] [--duration-s S]\n");
    return 2;
  }
  rlimit files{};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }

  const int total = o.rate * o.duration_s;
  schedule sched(static_cast<std::size_t>(total));
  std::vector<std::int64_t> latencies;
  latencies.reserve(static_cast<std::size_t>(total) *
                    static_cast<std::size_t>(o.connections / o.properties + 1));
  std::mutex mutex;
  std::atomic<int> subscribed{0};

  const long rss_before = o.bellhop_pid ? rss_kib(o.bellhop_pid) : -1;
  asio::io_context ioc(1);
  auto work = asio::make_work_guard(ioc);
  std::thread io([&] { ioc.run(); });
  std::vector<std::shared_ptr<dashboard>> dashboards;
  for (int i = 0; i < o.connections; ++i) {
    dashboards.push_back(
        std::make_shared<dashboard>(ioc, o, i, sched, subscribed, latencies, mutex));
    asio::post(ioc, [d = dashboards.back()] { d->start(); });
    if (i % 200 == 199) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto connect_deadline = clock_type::now() + std::chrono::seconds(120);
  while (subscribed < o.connections && clock_type::now() < connect_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::seconds(2));  // idle
  const long rss_idle = o.bellhop_pid ? rss_kib(o.bellhop_pid) : -1;

  std::atomic<int> errors{0};
  const auto t0 = clock_type::now() + std::chrono::milliseconds(100);
  std::vector<std::thread> producers;
  constexpr int producer_threads = 4;
  for (int p = 0; p < producer_threads; ++p)
    producers.emplace_back(
        [&, p] { produce(o, sched, t0, p, producer_threads, total, errors); });
  for (auto& t : producers) t.join();
  const auto sent_done = clock_type::now();
  // Let the last events arrive (up to 5 s).
  const std::uint64_t expected =
      [&] {
        std::uint64_t e = 0;
        for (int k = 0; k < total; ++k) {
          const int prop = k % o.properties;
          e += static_cast<std::uint64_t>(o.connections / o.properties +
                                          (prop < o.connections % o.properties ? 1 : 0));
        }
        return e;
      }();
  auto received_total = [&] {
    std::lock_guard lock(mutex);
    return static_cast<std::uint64_t>(latencies.size());
  };
  const auto drain_deadline = clock_type::now() + std::chrono::seconds(5);
  while (received_total() < expected && clock_type::now() < drain_deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto end = clock_type::now();

  std::vector<std::int64_t> sorted;
  {
    std::lock_guard lock(mutex);
    sorted = latencies;
  }
  std::sort(sorted.begin(), sorted.end());
  const double seconds =
      std::chrono::duration<double>(std::max(sent_done, end) - t0).count();
  std::printf(
      "fanout_bench connections=%d subscribed=%d properties=%d rate=%d duration_s=%d "
      "events=%d post_errors=%d deliveries=%zu expected=%llu missing=%lld "
      "deliveries_per_s=%.0f p50_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
      "rss_before_kib=%ld rss_idle_kib=%ld bytes_per_idle_connection=%.0f\n",
      o.connections, subscribed.load(), o.properties, o.rate, o.duration_s, total, errors.load(),
      sorted.size(), static_cast<unsigned long long>(expected),
      static_cast<long long>(expected) - static_cast<long long>(sorted.size()),
      static_cast<double>(sorted.size()) / seconds, percentile_ms(sorted, 0.50),
      percentile_ms(sorted, 0.99), percentile_ms(sorted, 0.999),
      sorted.empty() ? 0.0 : static_cast<double>(sorted.back()) / 1e6, rss_before, rss_idle,
      rss_before > 0 && rss_idle > 0
          ? 1024.0 * static_cast<double>(rss_idle - rss_before) / o.connections
          : -1.0);
  std::fflush(stdout);
  std::_Exit(subscribed == o.connections && errors == 0 ? 0 : 1);
}
