// Rate-limit decisions through bellhop_ratelimit: limiter::check (checks made together share one
// EVALSHA of ratelimit/lua/check.lua, docs/ratelimit.md), one policy and one subject per check,
// the subject drawn at random from --keys distinct ones. Prints machine-readable lines
// (`name key=value ...`).
//
//   saturation (closed loop): --threads caller threads (1-2), --in-flight checks outstanding in
//     all, each completion sends the next; decisions/s = completions in the measured window.
//   rate (open loop): checks are scheduled every 1/--rate s and sent at their scheduled time
//     (late ones at once, never skipped); latency runs from the SCHEDULED time, so a stalled
//     sender or broker is counted (no coordinated omission).
//
//   ratelimit_bench --redis redis://127.0.0.1:6379 --mode saturation --in-flight 256 --duration-s
//   10 ratelimit_bench --redis 6379 --mode rate --rate 10000 --duration-s 10 --algorithm gcra
//
// Other options: --threads N, --keys K, --limit L --window-ms W --burst B (the policy; default
// 1000000 per 1000 ms, so nearly every check is allowed), --cost C, --warmup-s S (runs the same
// load first, not measured), --prefix P (key prefix, default "bench:"), --policy NAME (default
// bench_<algorithm>), --calls-in-flight N --batch-decisions N --batch-keys N (the limiter's
// batching, limiter::limits; its defaults otherwise). Keys: <prefix>ratelimit:<policy>:<subject>,
// subject 12 digits.
// Exit status 0, or 1 when a check failed (degraded) or did not complete.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bellhop/broker/broker.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/broker/redis_url.hpp"
#include "bellhop/ratelimit/limiter.hpp"

namespace asio = boost::asio;
namespace rl = bellhop::ratelimit;
using clock_type = std::chrono::steady_clock;

namespace {

struct options {
  std::string redis = "redis://127.0.0.1:6379";
  std::string mode = "saturation";
  double rate = 10000;
  double duration_s = 10;
  double warmup_s = 1;
  int in_flight = 256;
  int threads = 1;
  std::string algorithm = "fixed_window";
  long long limit = 1'000'000;
  long long window_ms = 1000;
  long long burst = 0;
  long long cost = 1;
  long keys = 1'000'000;
  std::string prefix = "bench:";
  std::string policy_name;  // default "bench_<algorithm>": algorithms never share keys
  rl::limiter::limits batching;  // the limiter's defaults unless set
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(
      stderr,
      "%s\nusage: ratelimit_bench [--redis URL|PORT] [--mode saturation|rate] [--rate N] "
      "[--duration-s S] [--warmup-s S] [--in-flight N] [--threads N] "
      "[--algorithm fixed_window|sliding_window|gcra] [--limit L] [--window-ms W] "
      "[--burst B] [--cost C] [--keys K] [--prefix P] [--policy NAME] [--calls-in-flight N] "
      "[--batch-decisions N] [--batch-keys N]\n",
      why);
  std::exit(2);
}

options parse(int argc, char** argv) {
  options o;
  try {
    for (int i = 1; i < argc; i += 2) {
      const std::string k = argv[i];
      if (i + 1 >= argc) usage(("missing value for " + k).c_str());
      const std::string v = argv[i + 1];
      if (k == "--redis") o.redis = v;
      else if (k == "--mode") o.mode = v;
      else if (k == "--rate") o.rate = std::stod(v);
      else if (k == "--duration-s") o.duration_s = std::stod(v);
      else if (k == "--warmup-s") o.warmup_s = std::stod(v);
      else if (k == "--in-flight") o.in_flight = std::stoi(v);
      else if (k == "--threads") o.threads = std::stoi(v);
      else if (k == "--algorithm") o.algorithm = v;
      else if (k == "--limit") o.limit = std::stoll(v);
      else if (k == "--window-ms") o.window_ms = std::stoll(v);
      else if (k == "--burst") o.burst = std::stoll(v);
      else if (k == "--cost") o.cost = std::stoll(v);
      else if (k == "--keys") o.keys = std::stol(v);
      else if (k == "--prefix") o.prefix = v;
      else if (k == "--policy") o.policy_name = v;
      else if (k == "--calls-in-flight")
        o.batching.max_in_flight = std::stoul(v);
      else if (k == "--batch-decisions")
        o.batching.max_decisions = std::stoul(v);
      else if (k == "--batch-keys")
        o.batching.max_keys = std::stoul(v);
      else usage(("unknown option " + k).c_str());
    }
  } catch (const std::exception&) {
    usage("bad number");
  }
  if (o.mode != "saturation" && o.mode != "rate") usage("--mode is saturation or rate");
  if (o.mode == "rate" && !(o.rate > 0)) usage("--rate must be > 0");
  if (o.duration_s <= 0 || o.warmup_s < 0) usage("--duration-s must be > 0, --warmup-s >= 0");
  if (o.threads < 1 || o.in_flight < o.threads) usage("need --threads >= 1 and --in-flight >= --threads");
  if (o.keys < 1) usage("--keys must be >= 1");
  if (o.batching.max_in_flight < 1 || o.batching.max_decisions < 1 || o.batching.max_keys < 1)
    usage("--calls-in-flight, --batch-decisions and --batch-keys must be >= 1");
  return o;
}

// "6379" means redis://127.0.0.1:6379.
std::string redis_url(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos)
    return "redis://127.0.0.1:" + s;
  return s;
}

// Subjects as redis-benchmark writes __rand_int__ (12 digits, zero-padded), so both benchmarks
// use keys of the same names and lengths.
std::string subject_name(long n) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%012ld", n);
  return buf;
}

double thread_cpu_s(pthread_t t) {
  clockid_t id;
  timespec ts{};
  if (pthread_getcpuclockid(t, &id) != 0 || clock_gettime(id, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
double clock_s(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Shared by the workers; fixed before the load starts.
struct plan {
  rl::limiter* limiter = nullptr;
  const rl::policy* policy = nullptr;
  std::int64_t cost = 1;
  long keys = 1;
  clock_type::time_point measure_from;  // end of the warm-up
  clock_type::time_point end;           // no check is sent after this
};

// One caller thread with its own single-threaded io_context: check completions run here, and
// (saturation) the next check is sent from here. Counters are touched only on this thread.
class worker {
 public:
  worker(const plan& p, int index, int in_flight)
      : plan_(p), in_flight_(in_flight), rng_(0x5eed + static_cast<unsigned>(index)),
        subject_(0, p.keys - 1) {
    latencies_ms_.reserve(1 << 20);
    thread_ = std::thread([this] { ctx_.run(); });
  }

  // Saturation: keep in_flight checks outstanding until plan.end.
  void start_saturation() {
    asio::post(ctx_, [this] {
      for (int i = 0; i < in_flight_; ++i) send_closed_loop();
    });
  }

  // Rate: one check scheduled at `at` (called from the sender thread; check() is thread-safe).
  void send_scheduled(clock_type::time_point at, long subject) {
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    plan_.limiter->check({rl::limit_key{plan_.policy, subject_name(subject)}}, plan_.cost,
                         ctx_.get_executor(), [this, at](rl::decision d) {
                           const auto now = clock_type::now();
                           if (at >= plan_.measure_from) record(at, now, d);
                           ++completed_total_;
                           outstanding_.fetch_sub(1, std::memory_order_release);
                         });
  }

  long outstanding() const { return outstanding_.load(std::memory_order_acquire); }

  void join() {
    guard_.reset();
    if (thread_.joinable()) thread_.join();
  }
  pthread_t native() { return thread_.native_handle(); }

  // Read after join().
  std::vector<float> latencies_ms_;
  long allowed_ = 0, denied_ = 0, errors_ = 0, completed_total_ = 0;
  std::string first_error_;

 private:
  void send_closed_loop() {
    outstanding_.fetch_add(1, std::memory_order_relaxed);
    const auto sent = clock_type::now();
    plan_.limiter->check({rl::limit_key{plan_.policy, subject_name(subject_(rng_))}},
                         plan_.cost, ctx_.get_executor(), [this, sent](rl::decision d) {
                           const auto now = clock_type::now();
                           // Counted when it completes inside the measured window.
                           if (now >= plan_.measure_from && now <= plan_.end) record(sent, now, d);
                           ++completed_total_;
                           if (now < plan_.end) send_closed_loop();
                           outstanding_.fetch_sub(1, std::memory_order_release);
                         });
  }

  void record(clock_type::time_point from, clock_type::time_point now, const rl::decision& d) {
    latencies_ms_.push_back(std::chrono::duration<float, std::milli>(now - from).count());
    if (d.degraded) {
      ++errors_;
      if (first_error_.empty()) first_error_ = d.error;
    } else if (d.allowed) {
      ++allowed_;
    } else {
      ++denied_;
    }
  }

  const plan& plan_;
  int in_flight_;
  std::mt19937_64 rng_;
  std::uniform_int_distribution<long> subject_;
  std::atomic<long> outstanding_{0};
  asio::io_context ctx_{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(ctx_);
  std::thread thread_;
};

float percentile(std::vector<float>& v, double p) {  // v sorted
  if (v.empty()) return 0;
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  spdlog::set_level(spdlog::level::warn);  // keep stdout to the result lines
  const auto algo = rl::parse_algorithm(o.algorithm);
  if (!algo) usage("unknown --algorithm");
  rl::policy pol;
  pol.name = o.policy_name.empty() ? "bench_" + o.algorithm : o.policy_name;
  pol.algorithm = *algo;
  pol.limit = o.limit;
  pol.window_ms = o.window_ms;
  pol.burst = o.burst;
  pol.fail = rl::failure_mode::closed;
  if (auto why = rl::validate(pol); !why.empty()) usage(why.c_str());

  auto ep = bellhop::broker::parse_redis_url(redis_url(o.redis));
  if (!ep) {
    std::fprintf(stderr, "bad --redis: %s\n", ep.error().message.c_str());
    return 2;
  }
  bellhop::broker::broker_options bo;
  bo.endpoint = *ep;
  bo.client_name = "ratelimit_bench";
  bellhop::broker::broker redis(bo);
  redis.start();
  for (int i = 0; i < 300 && !redis.ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (!redis.ready()) {
    std::fprintf(stderr, "cannot connect to %s\n", ep->redacted().c_str());
    return 1;
  }
  rl::limiter limiter(redis, bellhop::contract::key_space(o.prefix), o.batching);

  // One check first: it loads the script (NOSCRIPT -> SCRIPT LOAD) and proves the setup works.
  {
    asio::io_context once;
    std::promise<rl::decision> p;
    limiter.check({rl::limit_key{&pol, "warmup"}}, 0, once.get_executor(),
                  [&](rl::decision d) { p.set_value(std::move(d)); });
    auto guard = asio::make_work_guard(once);
    std::thread t([&] { once.run(); });
    auto d = p.get_future().get();
    guard.reset();
    t.join();
    if (d.degraded) {
      std::fprintf(stderr, "first check failed: %s\n", d.error.c_str());
      redis.stop();
      return 1;
    }
  }

  plan pl;
  pl.limiter = &limiter;
  pl.policy = &pol;
  pl.cost = o.cost;
  pl.keys = o.keys;
  const auto start = clock_type::now();
  pl.measure_from = start + std::chrono::duration_cast<clock_type::duration>(
                                std::chrono::duration<double>(o.warmup_s));
  pl.end = pl.measure_from + std::chrono::duration_cast<clock_type::duration>(
                                 std::chrono::duration<double>(o.duration_s));

  std::vector<std::unique_ptr<worker>> workers;
  for (int t = 0; t < o.threads; ++t) {
    const int share = o.in_flight / o.threads + (t < o.in_flight % o.threads ? 1 : 0);
    workers.push_back(std::make_unique<worker>(pl, t, share));
  }

  double process_cpu0 = 0, main_cpu0 = 0;
  std::vector<double> worker_cpu0(workers.size());
  auto mark_cpu = [&] {
    process_cpu0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    main_cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (std::size_t i = 0; i < workers.size(); ++i) worker_cpu0[i] = thread_cpu_s(workers[i]->native());
  };
  double max_lag_ms = 0;  // rate: how late the sender ran behind its schedule, at worst
  long scheduled = 0;

  if (o.mode == "saturation") {
    for (auto& w : workers) w->start_saturation();
    std::this_thread::sleep_until(pl.measure_from);
    mark_cpu();
    std::this_thread::sleep_until(pl.end);
  } else {
    // Open loop: check i is due at start + i / rate. Everything due is sent at once, then the
    // sender sleeps until the next one is due.
    std::mt19937_64 rng(0xbe11);
    std::uniform_int_distribution<long> subject(0, o.keys - 1);
    const auto interval = std::chrono::duration<double>(1.0 / o.rate);
    auto due = [&](long i) {
      return start + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(i));
    };
    bool marked = false;
    for (;;) {
      const auto now = clock_type::now();
      if (!marked && now >= pl.measure_from) {
        mark_cpu();
        marked = true;
      }
      if (due(scheduled) >= pl.end) break;
      if (due(scheduled) <= now) {
        max_lag_ms = std::max(max_lag_ms,
                              std::chrono::duration<double, std::milli>(now - due(scheduled)).count());
      }
      for (; due(scheduled) <= now && due(scheduled) < pl.end; ++scheduled) {
        workers[static_cast<std::size_t>(scheduled) % workers.size()]->send_scheduled(due(scheduled),
                                                                                       subject(rng));
      }
      std::this_thread::sleep_until(std::min(due(scheduled), pl.end));
    }
    if (!marked) mark_cpu();
  }
  const auto stop_sending = clock_type::now();
  // CPU over the measured window (up to the end of sending; the drain is excluded).
  const double process_cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - process_cpu0;
  const double main_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - main_cpu0;
  double workers_cpu = 0;
  for (std::size_t i = 0; i < workers.size(); ++i) workers_cpu += thread_cpu_s(workers[i]->native()) - worker_cpu0[i];

  // Drain: everything sent completes (a reply or the broker's command timeout).
  const auto drain_deadline = stop_sending + bo.command_timeout + std::chrono::seconds(2);
  long undrained = 0;
  for (;;) {
    undrained = 0;
    for (auto& w : workers) undrained += w->outstanding();
    if (undrained == 0 || clock_type::now() > drain_deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (undrained != 0) {
    std::fprintf(stderr, "%ld checks still outstanding %.0f s after the end; giving up\n", undrained,
                 std::chrono::duration<double>(clock_type::now() - stop_sending).count());
    std::fflush(stderr);
    std::_Exit(1);  // their handlers reference the workers: do not tear down under them
  }
  for (auto& w : workers) w->join();

  std::vector<float> lat;
  long allowed = 0, denied = 0, errors = 0, total = 0;
  std::string first_error;
  for (auto& w : workers) {
    lat.insert(lat.end(), w->latencies_ms_.begin(), w->latencies_ms_.end());
    allowed += w->allowed_;
    denied += w->denied_;
    errors += w->errors_;
    total += w->completed_total_;
    if (first_error.empty()) first_error = w->first_error_;
  }
  std::sort(lat.begin(), lat.end());
  const auto decisions = static_cast<long>(lat.size());
  const double seconds = o.duration_s;
  const auto st = redis.stats();

  std::printf("ratelimit_bench mode=%s algorithm=%s limit=%lld window_ms=%lld keys=%ld threads=%d ",
              o.mode.c_str(), o.algorithm.c_str(), o.limit, o.window_ms, o.keys, o.threads);
  if (o.mode == "saturation") std::printf("in_flight=%d ", o.in_flight);
  else std::printf("offered_per_s=%.0f max_send_lag_ms=%.2f ", o.rate, max_lag_ms);
  std::printf("seconds=%.2f decisions=%ld decisions_per_s=%.0f allowed=%ld denied=%ld errors=%ld "
              "p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f checks_total=%ld\n",
              seconds, decisions, static_cast<double>(decisions) / seconds, allowed, denied, errors,
              percentile(lat, 0.50), percentile(lat, 0.90), percentile(lat, 0.99),
              percentile(lat, 0.999), lat.empty() ? 0.0f : lat.back(), total);
  // The broker thread is the process minus the caller threads and the main thread (sender).
  const double n = decisions > 0 ? static_cast<double>(decisions) : 1.0;
  const double broker_cpu = std::max(0.0, process_cpu - workers_cpu - main_cpu);
  std::printf("ratelimit_bench_cpu mode=%s algorithm=%s process_s=%.2f callers_s=%.2f sender_s=%.2f "
              "broker_s=%.2f us_per_decision=%.2f callers_us=%.2f broker_us=%.2f\n",
              o.mode.c_str(), o.algorithm.c_str(), process_cpu, workers_cpu, main_cpu, broker_cpu,
              process_cpu * 1e6 / n, workers_cpu * 1e6 / n, broker_cpu * 1e6 / n);
  std::printf(
      "ratelimit_bench_broker mode=%s algorithm=%s commands=%llu script_calls=%llu "
      "checks_per_call=%.1f errors=%llu timeouts=%llu reconnects=%llu script_errors=%llu\n",
      o.mode.c_str(), o.algorithm.c_str(), static_cast<unsigned long long>(st.commands),
      static_cast<unsigned long long>(limiter.calls()),
      static_cast<double>(total + 1) /
          static_cast<double>(std::max<std::uint64_t>(1, limiter.calls())),
      static_cast<unsigned long long>(st.errors), static_cast<unsigned long long>(st.timeouts),
      static_cast<unsigned long long>(st.reconnects),
      static_cast<unsigned long long>(limiter.script_errors()));
  if (errors > 0) std::printf("ratelimit_bench_first_error %s\n", first_error.c_str());
  std::fflush(stdout);
  redis.stop();
  return errors == 0 ? 0 : 1;
}
