// Ingest benchmark: HTTP/1.1 load on POST /v1/messages/inbound over keep-alive connections,
// one request in flight per connection. Prints one machine-readable result line.
//
//   ingest_bench --url http://127.0.0.1:8080 --key KEY --rate 5000 --duration-s 10
//   ingest_bench --url http://127.0.0.1:8080 --key KEY --rate 0          (saturation)
//
// Modes
//   --rate R > 0  open loop: request k is *scheduled* at t0 + k/R, whatever the server does.
//                 A due request goes out on a free connection; if none is free it waits in a
//                 backlog. Latency runs from the scheduled time, so time spent in the backlog
//                 (or behind a late timer) counts: no coordinated omission.
//   --rate 0      saturation, closed loop: every connection sends its next request as soon as
//                 the previous answer is in. Latency runs from the actual send.
//
// Measurement: the first --warmup-s seconds are sent but not measured; then --duration-s
// seconds are. A request "belongs" to the window by its scheduled (rate) or send (saturation)
// time; p50/p99/p99.9/max are over the 202 answers of those requests, errors (transport
// failures, timeouts, requests still unanswered at the end) and non_202 count them too.
// accepted / accepted_per_s count 202 answers *arriving* inside the window, so a server that
// falls behind cannot look faster by draining its backlog after the window.
//
// Extra fields: p50_all_ms / p99_all_ms (over every HTTP answer, not only 202s),
// sent (requests of the window), max_backlog (rate mode: most due requests
// waiting at once for a free connection; raise --connections if it is large while the server
// is fast), max_client_lag_ms (rate mode: how late this process woke up for a due request; a
// large value means the load generator itself was starved of CPU).
//
// Each request is a canonical inbound message: request n belongs to conversation
// c = n % conversations, property_id "bench-<c % properties>", channel whatsapp, from
// "+4915<c, 8 digits>", external_id "bench-<run id>-<n>" (unique per request and run), ~60 bytes
// of text. Loopback only; bounded by --duration-s (<= 3600), --max-requests and a hard stop
// --timeout-s after the window.
//
// --timeline-ms T prints, before the result, one ingest_bench_timeline line per T ms since the
// start (warm-up included): answers arriving in it and their worst latency, to locate stalls.
//
// Second line (ingest_bench_totals): counts over the whole run including warm-up, e.g. to
// compare the number of 202s with LLEN inbound:messages.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

namespace {

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "ingest_bench: %s\n", message.c_str());
  std::fprintf(stderr,
               "usage: ingest_bench --url http://127.0.0.1:PORT --key KEY [--rate R (0 = "
               "saturation)]\n"
               "         [--connections 32] [--duration-s 10] [--warmup-s 1] [--properties 10]\n"
               "         [--conversations 1000] [--threads 1] [--timeout-s 5] "
               "[--max-requests 5000000]\n"
               "         [--timeline-ms 0 (> 0: one ingest_bench_timeline line per interval)]\n");
  std::exit(2);
}

struct options {
  std::string url;
  std::string key;
  double rate = 0;
  int connections = 32;
  double duration_s = 10;
  double warmup_s = 1;
  long properties = 10;
  long conversations = 1000;
  int threads = 1;
  double timeout_s = 5;
  long max_requests = 5'000'000;
  double timeline_ms = 0;
};

double number(const std::string& key, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(d) || d < lo || d > hi) {
    usage_error(key + " must be a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                "], got '" + v + "'");
  }
  return d;
}

long integer(const std::string& key, const std::string& v, long lo, long hi) {
  const double d = number(key, v, static_cast<double>(lo), static_cast<double>(hi));
  if (d != std::floor(d)) usage_error(key + " must be an integer, got '" + v + "'");
  return static_cast<long>(d);
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--help" || k == "-h") usage_error("help");
    if (i + 1 >= argc) usage_error("missing value for " + k);
    const std::string v = argv[i + 1];
    if (k == "--url") o.url = v;
    else if (k == "--key") o.key = v;
    else if (k == "--rate") o.rate = number(k, v, 0, 1e6);
    else if (k == "--connections") o.connections = static_cast<int>(integer(k, v, 1, 10000));
    else if (k == "--duration-s") o.duration_s = number(k, v, 0.1, 3600);
    else if (k == "--warmup-s") o.warmup_s = number(k, v, 0, 600);
    else if (k == "--properties") o.properties = integer(k, v, 1, 1'000'000);
    else if (k == "--conversations") o.conversations = integer(k, v, 1, 99'999'999);
    else if (k == "--threads") o.threads = static_cast<int>(integer(k, v, 1, 64));
    else if (k == "--timeout-s") o.timeout_s = number(k, v, 0.01, 120);
    else if (k == "--max-requests") o.max_requests = integer(k, v, 1, 1'000'000'000);
    else if (k == "--timeline-ms") o.timeline_ms = number(k, v, 0, 60'000);
    else usage_error("unknown option " + k);
  }
  if (o.url.empty()) usage_error("--url is required");
  if (o.key.empty()) usage_error("--key is required");
  if (o.threads > o.connections) o.threads = o.connections;
  return o;
}

// http://host:port[/] with host 127.x.y.z, [::1] or localhost; anything else is refused.
tcp::endpoint loopback_endpoint(const std::string& url, std::string& host_header) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) usage_error("--url must start with http:// (got " + url + ")");
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find('@') != std::string::npos) {
    usage_error("--url must be http://host:port without a path (got " + url + ")");
  }
  std::string host, port;
  if (!rest.empty() && rest.front() == '[') {
    const auto close = rest.find(']');
    if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      usage_error("bad --url " + url);
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    if (colon == std::string::npos) usage_error("--url needs an explicit port (got " + url + ")");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  const long p = integer("port", port, 1, 65535);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) usage_error("--url host must be a loopback address or localhost (got " + host + ")");
  if (!address.is_loopback()) {
    usage_error("refusing a non-loopback target " + host + ": this benchmark is loopback only");
  }
  host_header = rest;
  return {address, static_cast<unsigned short>(p)};
}

std::string random_run_id() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// What every shard shares (read-only once the run starts).
struct plan {
  tcp::endpoint endpoint;
  std::string host_header;
  std::string authorization;
  std::string run_id;
  double rate = 0;
  long properties = 10, conversations = 1000, max_requests = 0;
  int shards = 1;
  std::chrono::nanoseconds timeout{};
  std::chrono::nanoseconds timeline{};  // 0 = no timeline
  time_point t0, t_measure, t_end, t_hard;
};

void make_body(const plan& p, long n, std::string& out) {
  const long conv = n % p.conversations;
  const long prop = conv % p.properties;
  char buf[400];
  const int len = std::snprintf(
      buf, sizeof buf,
      R"({"property_id":"bench-%ld","channel":"whatsapp","external_id":"bench-%s-%ld",)"
      R"("from":"+4915%08ld","to":"+4930123456",)"
      R"("text":"Hello, is a late checkout possible tomorrow? Request %08ld.",)"
      R"("content_type":"text"})",
      prop, p.run_id.c_str(), n, conv, n % 100'000'000);
  out.assign(buf, static_cast<std::size_t>(std::clamp(len, 0, static_cast<int>(sizeof buf) - 1)));
}

struct job {
  long n = 0;
  time_point scheduled{};
  bool measured = false;
};

// Answers arriving in one timeline interval.
struct bucket {
  long ok = 0, other = 0, errors = 0;
  std::int64_t max_latency_ns = 0;
};

struct stats {
  std::vector<bucket> timeline;
  std::vector<std::int64_t> latency_ns;    // 202 answers of measured requests
  std::vector<std::int64_t> latency_all_ns;  // every HTTP answer of measured requests
  long accepted_in_window = 0;             // 202 answers arriving inside the window
  long accepted_measured = 0;              // 202 answers of measured requests
  long errors_measured = 0;                // transport errors / timeouts / unfinished
  long non202_measured = 0;
  std::map<int, long> codes_measured;      // non-202 status -> count
  std::map<std::string, long> error_kinds;  // whole run
  long sent_total = 0, status202_total = 0, other_total = 0, errors_total = 0;
  long bad_202_body = 0, unfinished = 0, connect_errors = 0, reconnects = 0;
  std::size_t max_backlog = 0;      // rate mode: due requests waiting for a free connection
  std::int64_t max_timer_lag_ns = 0;  // rate mode: how late this process woke for a due request
  long sent_measured = 0;

  void merge(const stats& o) {
    latency_ns.insert(latency_ns.end(), o.latency_ns.begin(), o.latency_ns.end());
    latency_all_ns.insert(latency_all_ns.end(), o.latency_all_ns.begin(), o.latency_all_ns.end());
    if (timeline.size() < o.timeline.size()) timeline.resize(o.timeline.size());
    for (std::size_t i = 0; i < o.timeline.size(); ++i) {
      timeline[i].ok += o.timeline[i].ok;
      timeline[i].other += o.timeline[i].other;
      timeline[i].errors += o.timeline[i].errors;
      timeline[i].max_latency_ns =
          std::max(timeline[i].max_latency_ns, o.timeline[i].max_latency_ns);
    }
    accepted_in_window += o.accepted_in_window;
    accepted_measured += o.accepted_measured;
    errors_measured += o.errors_measured;
    non202_measured += o.non202_measured;
    for (auto& [k, v] : o.codes_measured) codes_measured[k] += v;
    for (auto& [k, v] : o.error_kinds) error_kinds[k] += v;
    sent_total += o.sent_total;
    status202_total += o.status202_total;
    other_total += o.other_total;
    errors_total += o.errors_total;
    bad_202_body += o.bad_202_body;
    unfinished += o.unfinished;
    connect_errors += o.connect_errors;
    reconnects += o.reconnects;
    max_backlog = std::max(max_backlog, o.max_backlog);
    max_timer_lag_ns = std::max(max_timer_lag_ns, o.max_timer_lag_ns);
    sent_measured += o.sent_measured;
  }
};

class shard;

// One keep-alive connection, at most one request in flight.
class connection {
 public:
  connection(shard& owner, asio::io_context& ioc, const plan& p);
  boost::system::error_code connect_now();
  void send(const job& j);
  void shut();
  bool busy() const { return busy_; }
  const job& current() const { return job_; }

 private:
  void on_write(beast::error_code ec);
  void on_read(beast::error_code ec);
  void fail(const char* kind);
  void reconnect(std::chrono::milliseconds delay);

  shard& owner_;
  const plan& plan_;
  beast::tcp_stream stream_;
  asio::steady_timer backoff_;
  beast::flat_buffer buffer_;
  std::string head_;   // request line and fields up to "Content-Length: ", fixed
  std::string body_;   // reused
  std::string wire_;   // head_ + length + body_, reused: one write per request
  http::response<http::string_body> res_;
  job job_;
  bool busy_ = false;
};

// One io_context on one thread with its share of the connections and of the schedule.
class shard {
 public:
  shard(const plan& p, int index, int connections)
      : plan_(p), index_(index), timer_(ioc_), hard_stop_(ioc_) {
    for (int i = 0; i < connections; ++i) {
      conns_.push_back(std::make_unique<connection>(*this, ioc_, plan_));
    }
  }

  boost::system::error_code connect_all() {
    for (auto& c : conns_) {
      if (auto ec = c->connect_now()) return ec;
    }
    return {};
  }

  void start() {
    hard_stop_.expires_at(plan_.t_hard);
    hard_stop_.async_wait([this](beast::error_code ec) {
      if (!ec) finish(true);
    });
    timer_.expires_at(plan_.t0);
    timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      if (plan_.rate > 0) {
        for (auto& c : conns_) idle_.push_back(c.get());
        tick();
      } else {
        for (auto& c : conns_) on_idle(*c);
      }
    });
  }

  void run() { ioc_.run(); }
  stats& result() { return st_; }
  bool finished() const { return finished_; }

  // --- called by connections ---
  void on_idle(connection& c) {
    if (finished_) return;
    if (plan_.rate > 0) {
      idle_.push_back(&c);
      dispatch();
      maybe_finish();
      return;
    }
    const auto now = clock_type::now();
    const long n = sent_ * plan_.shards + index_;
    if (now < plan_.t_end && n < plan_.max_requests) {
      ++sent_;
      start_job(c, job{n, now, now >= plan_.t_measure});
    } else {
      idle_.push_back(&c);
      maybe_finish();
    }
  }

  void on_response(const job& j, unsigned status, bool body_ok) {
    const auto now = clock_type::now();
    --in_flight_;
    const std::int64_t latency =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - j.scheduled).count();
    if (bucket* b = bucket_at(now)) {
      (status == 202 ? b->ok : b->other) += 1;
      b->max_latency_ns = std::max(b->max_latency_ns, latency);
    }
    if (j.measured) st_.latency_all_ns.push_back(latency);
    if (status == 202) {
      ++st_.status202_total;
      if (!body_ok) ++st_.bad_202_body;
      if (now >= plan_.t_measure && now < plan_.t_end) ++st_.accepted_in_window;
      if (j.measured) {
        ++st_.accepted_measured;
        st_.latency_ns.push_back(latency);
      }
    } else {
      ++st_.other_total;
      if (j.measured) {
        ++st_.non202_measured;
        ++st_.codes_measured[static_cast<int>(status)];
      }
    }
  }

  void on_error(const job& j, const char* kind) {
    --in_flight_;
    if (bucket* b = bucket_at(clock_type::now())) ++b->errors;
    ++st_.errors_total;
    ++st_.error_kinds[kind];
    if (j.measured) ++st_.errors_measured;
    maybe_finish();
  }

  void on_connect_error() { ++st_.connect_errors; }
  void on_reconnect() { ++st_.reconnects; }

 private:
  bucket* bucket_at(time_point t) {
    if (plan_.timeline.count() <= 0 || t < plan_.t0) return nullptr;
    const auto i = static_cast<std::size_t>((t - plan_.t0) / plan_.timeline);
    if (i >= 100'000) return nullptr;
    if (st_.timeline.size() <= i) st_.timeline.resize(i + 1);
    return &st_.timeline[i];
  }

  void start_job(connection& c, const job& j) {
    ++in_flight_;
    ++st_.sent_total;
    if (j.measured) ++st_.sent_measured;
    c.send(j);
  }

  // Rate mode: move every request that is due into the backlog, send what free connections
  // allow, sleep until the next one is due.
  void tick() {
    if (finished_) return;
    const auto now = clock_type::now();
    while (!schedule_done_) {
      const long g = next_ * plan_.shards + index_;
      const auto at = plan_.t0 + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(static_cast<double>(g) /
                                                                   plan_.rate));
      if (at >= plan_.t_end || g >= plan_.max_requests) {
        schedule_done_ = true;
        break;
      }
      if (at > now) {
        next_at_ = at;
        break;
      }
      st_.max_timer_lag_ns = std::max<std::int64_t>(
          st_.max_timer_lag_ns,
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - at).count());
      backlog_.push_back(job{g, at, at >= plan_.t_measure});
      ++next_;
    }
    dispatch();
    st_.max_backlog = std::max(st_.max_backlog, backlog_.size());
    if (schedule_done_) {
      maybe_finish();
      return;
    }
    timer_.expires_at(next_at_);
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) tick();
    });
  }

  void dispatch() {
    while (!idle_.empty() && !backlog_.empty()) {
      connection* c = idle_.back();
      idle_.pop_back();
      const job j = backlog_.front();
      backlog_.pop_front();
      start_job(*c, j);
    }
  }

  void maybe_finish() {
    if (finished_ || in_flight_ > 0) return;
    const bool no_more = plan_.rate > 0 ? (schedule_done_ && backlog_.empty())
                                        : clock_type::now() >= plan_.t_end;
    if (no_more) finish(false);
  }

  // Forced (hard stop): what is still queued or in flight is unfinished, counted as errors.
  void finish(bool forced) {
    if (finished_) return;
    finished_ = true;
    if (forced) {
      for (const auto& j : backlog_) {
        ++st_.unfinished;
        ++st_.errors_total;
        if (j.measured) ++st_.errors_measured;
      }
      for (auto& c : conns_) {
        if (!c->busy()) continue;
        ++st_.unfinished;
        ++st_.errors_total;
        if (c->current().measured) ++st_.errors_measured;
      }
      if (st_.unfinished > 0) st_.error_kinds["unfinished"] += st_.unfinished;
    }
    backlog_.clear();
    timer_.cancel();
    hard_stop_.cancel();
    for (auto& c : conns_) c->shut();
    ioc_.stop();
  }

  const plan& plan_;
  const int index_;
  asio::io_context ioc_{1};
  asio::steady_timer timer_, hard_stop_;
  std::vector<std::unique_ptr<connection>> conns_;
  std::vector<connection*> idle_;
  std::deque<job> backlog_;
  long next_ = 0;  // rate mode: next shard-local schedule slot
  long sent_ = 0;  // saturation mode: requests started by this shard
  time_point next_at_{};
  bool schedule_done_ = false;
  bool finished_ = false;
  long in_flight_ = 0;
  stats st_;
};

connection::connection(shard& owner, asio::io_context& ioc, const plan& p)
    : owner_(owner), plan_(p), stream_(ioc), backoff_(ioc) {
  // Serialized by hand: Beast's serializer costs the generator several microseconds a
  // request, CPU the server under test would otherwise have on this 2-core machine.
  head_ = "POST /v1/messages/inbound HTTP/1.1\r\nHost: " + plan_.host_header +
          "\r\nAuthorization: " + plan_.authorization +
          "\r\nContent-Type: application/json\r\nUser-Agent: bellhop-ingest-bench"
          "\r\nContent-Length: ";
}

boost::system::error_code connection::connect_now() {
  boost::system::error_code ec;
  stream_.socket().connect(plan_.endpoint, ec);
  if (!ec) stream_.socket().set_option(tcp::no_delay(true), ec);
  return ec;
}

void connection::send(const job& j) {
  job_ = j;
  busy_ = true;
  make_body(plan_, j.n, body_);
  wire_.assign(head_);
  wire_.append(std::to_string(body_.size()));
  wire_.append("\r\n\r\n");
  wire_.append(body_);
  stream_.expires_after(plan_.timeout);
  asio::async_write(stream_, asio::buffer(wire_),
                    [this](beast::error_code ec, std::size_t) { on_write(ec); });
}

void connection::on_write(beast::error_code ec) {
  if (ec) return fail(ec == beast::error::timeout ? "timeout" : "write");
  res_ = {};
  http::async_read(stream_, buffer_, res_,
                   [this](beast::error_code ec2, std::size_t) { on_read(ec2); });
}

void connection::on_read(beast::error_code ec) {
  if (ec) return fail(ec == beast::error::timeout ? "timeout" : "read");
  busy_ = false;
  const unsigned status = res_.result_int();
  const bool body_ok = status != 202 || res_.body().find("\"queued\"") != std::string::npos;
  const bool keep = res_.keep_alive();
  owner_.on_response(job_, status, body_ok);
  if (owner_.finished()) return;
  if (keep) {
    owner_.on_idle(*this);
  } else {
    reconnect(std::chrono::milliseconds(0));
  }
}

void connection::fail(const char* kind) {
  busy_ = false;
  owner_.on_error(job_, kind);
  if (!owner_.finished()) reconnect(std::chrono::milliseconds(10));
}

void connection::reconnect(std::chrono::milliseconds delay) {
  beast::error_code ignored;
  stream_.socket().close(ignored);
  buffer_.clear();
  backoff_.expires_after(delay);
  backoff_.async_wait([this](beast::error_code ec) {
    if (ec || owner_.finished()) return;
    stream_.expires_after(plan_.timeout);
    stream_.async_connect(plan_.endpoint, [this](beast::error_code ec2) {
      if (owner_.finished()) return;
      if (ec2) {
        owner_.on_connect_error();
        reconnect(std::chrono::milliseconds(100));
        return;
      }
      beast::error_code ignored2;
      stream_.socket().set_option(tcp::no_delay(true), ignored2);
      owner_.on_reconnect();
      owner_.on_idle(*this);
    });
  });
}

void connection::shut() {
  backoff_.cancel();
  beast::error_code ignored;
  stream_.socket().close(ignored);
}

double percentile_ms(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

template <class Map>
std::string join(const Map& m) {
  if (m.empty()) return "-";
  std::string out;
  for (const auto& [k, v] : m) {
    if (!out.empty()) out += ',';
    if constexpr (std::is_same_v<typename Map::key_type, int>) {
      out += std::to_string(k);
    } else {
      out += k;
    }
    out += ':' + std::to_string(v);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const options o = parse(argc, argv);
  plan p;
  p.endpoint = loopback_endpoint(o.url, p.host_header);
  p.authorization = "Bearer " + o.key;
  p.run_id = random_run_id();
  p.rate = o.rate;
  p.properties = o.properties;
  p.conversations = o.conversations;
  p.max_requests = o.max_requests;
  p.shards = o.threads;
  p.timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(o.timeout_s));
  p.timeline = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double, std::milli>(o.timeline_ms));

  std::vector<std::unique_ptr<shard>> shards;
  for (int s = 0; s < o.threads; ++s) {
    const int conns = o.connections / o.threads + (s < o.connections % o.threads ? 1 : 0);
    shards.push_back(std::make_unique<shard>(p, s, conns));
  }
  for (auto& s : shards) {
    if (auto ec = s->connect_all()) {
      std::fprintf(stderr, "ingest_bench: cannot connect to %s: %s\n", o.url.c_str(),
                   ec.message().c_str());
      return 1;
    }
  }

  auto secs = [](double s) {
    return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
  };
  p.t0 = clock_type::now() + std::chrono::milliseconds(20);
  p.t_measure = p.t0 + secs(o.warmup_s);
  p.t_end = p.t_measure + secs(o.duration_s);
  p.t_hard = p.t_end + secs(o.timeout_s) + std::chrono::milliseconds(500);

  for (auto& s : shards) s->start();
  std::vector<std::thread> threads;
  for (auto& s : shards) threads.emplace_back([&s] { s->run(); });
  for (auto& t : threads) t.join();

  stats total;
  for (auto& s : shards) total.merge(s->result());
  std::sort(total.latency_ns.begin(), total.latency_ns.end());
  std::sort(total.latency_all_ns.begin(), total.latency_all_ns.end());
  const auto& lat = total.latency_ns;
  const double max_ms = lat.empty() ? 0 : static_cast<double>(lat.back()) / 1e6;

  for (std::size_t i = 0; i < total.timeline.size(); ++i) {
    const auto& b = total.timeline[i];
    std::printf("ingest_bench_timeline t_ms=%.0f ok=%ld other=%ld errors=%ld max_ms=%.3f\n",
                static_cast<double>(i + 1) * o.timeline_ms, b.ok, b.other, b.errors,
                static_cast<double>(b.max_latency_ns) / 1e6);
  }
  std::printf(
      "ingest_bench mode=%s offered=%.0f accepted=%ld accepted_per_s=%.1f p50_ms=%.3f "
      "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f errors=%ld non_202=%ld non_202_codes=%s "
      "connections=%d duration_s=%g sent=%ld max_backlog=%zu max_client_lag_ms=%.3f "
      "p50_all_ms=%.3f p99_all_ms=%.3f\n",
      o.rate > 0 ? "rate" : "saturation", o.rate, total.accepted_in_window,
      static_cast<double>(total.accepted_in_window) / o.duration_s, percentile_ms(lat, 0.50),
      percentile_ms(lat, 0.99), percentile_ms(lat, 0.999), max_ms, total.errors_measured,
      total.non202_measured, join(total.codes_measured).c_str(), o.connections, o.duration_s,
      total.sent_measured, total.max_backlog, static_cast<double>(total.max_timer_lag_ns) / 1e6,
      percentile_ms(total.latency_all_ns, 0.50), percentile_ms(total.latency_all_ns, 0.99));
  std::printf(
      "ingest_bench_totals run=%s sent=%ld status_202=%ld other_status=%ld errors=%ld "
      "error_kinds=%s bad_202_body=%ld unfinished=%ld connect_errors=%ld reconnects=%ld\n",
      p.run_id.c_str(), total.sent_total, total.status202_total, total.other_total,
      total.errors_total, join(total.error_kinds).c_str(), total.bad_202_body, total.unfinished,
      total.connect_errors, total.reconnects);
  return 0;
}
