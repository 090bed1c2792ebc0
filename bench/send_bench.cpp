// The sends alone: Bellhop's WhatsApp requests (channels::whatsapp::send_request), made by its
// provider client (keep-alive connections, one network thread as bellhop runs on two cores) to
// bench/provider_fake, each answer classified (interpret_send), with no Redis at all. What the
// HTTP exchange costs the sender and the provider: the ceiling of any outbound design on the
// machine it runs on (bench/run_outbound_bench.sh runs it next to bellhop and BullMQ).
//
//   send_bench --url http://127.0.0.1:PORT/v21.0 [--count N] [--concurrency C]
//
// Prints "send_bench sends=N sent=K seconds=S sends_per_s=R cpu_s=U p50_ms=A p99_ms=B"
// (cpu_s: this process's user + system CPU while sending; latency: call to classified answer).
// Exit status 0 when every send was classified sent, else 1.
#include <boost/asio/io_context.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/channels/whatsapp.hpp"
#include "bellhop/transport/provider_client.hpp"

namespace {

using clock_type = std::chrono::steady_clock;

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  const auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

struct run {
  bellhop::channels::whatsapp::settings settings;
  bellhop::gateway::provider_client client;
  boost::asio::io_context& io;
  int count;
  int issued = 0, answered = 0, sent = 0;
  std::vector<double> latencies_ms;

  run(std::string url, int count_, int concurrency, boost::asio::io_context& io_)
      : settings{"", "", "bench-token", "1000", std::move(url)},
        client(std::chrono::seconds(10), static_cast<std::size_t>(concurrency)),
        io(io_),
        count(count_) {
    latencies_ms.reserve(static_cast<std::size_t>(count));
  }

  // Sends the next message, as the dispatcher would: the request built from the message, the
  // answer classified.
  void next() {
    if (issued == count) return;
    const int i = issued++;
    bellhop::channels::outbound_message m;
    m.id = "m_bench" + std::to_string(i);
    m.property_id = "bench-1";
    m.channel = "whatsapp";
    m.to = "+49151" + std::to_string(10000000 + i);
    m.text = "Your room is ready.";
    const auto start = clock_type::now();
    client.call(bellhop::channels::whatsapp::send_request(settings, m), io.get_executor(),
                [this, start](bellhop::gateway::provider_response r) {
                  const auto result =
                      bellhop::channels::whatsapp::interpret_send(r.status, r.body, r.headers);
                  if (result.outcome == bellhop::channels::send_outcome::sent) ++sent;
                  latencies_ms.push_back(
                      std::chrono::duration<double, std::milli>(clock_type::now() - start).count());
                  ++answered;
                  next();
                });
  }
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  int count = 20000, concurrency = 256;
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (i + 1 == argc) {
      std::fprintf(stderr, "send_bench: %s needs a value\n", argv[i]);
      return 2;
    }
    if (flag == "--url") {
      url = argv[i + 1];
    } else if (flag == "--count") {
      count = std::atoi(argv[i + 1]);
    } else if (flag == "--concurrency") {
      concurrency = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "send_bench: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (url.empty() || count <= 0 || concurrency <= 0) {
    std::fprintf(stderr, "usage: send_bench --url URL [--count N] [--concurrency C]\n");
    return 2;
  }
  boost::asio::io_context io(1);
  run r(url, count, concurrency, io);
  const double cpu0 = cpu_seconds();
  const auto t0 = clock_type::now();
  for (int i = 0; i < concurrency; ++i) r.next();
  io.run();
  const double seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  std::printf(
      "send_bench sends=%d sent=%d seconds=%.3f sends_per_s=%.0f cpu_s=%.2f p50_ms=%.2f "
      "p99_ms=%.2f\n",
      r.answered, r.sent, seconds, r.answered / seconds, cpu, percentile(r.latencies_ms, 0.5),
      percentile(r.latencies_ms, 0.99));
  return r.sent == count ? 0 : 1;
}
