#include "bellhop/inbound/inbound_reaper.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "bellhop/contract/id_limits.hpp"
#include "bellhop/contract/ids.hpp"
#include "bellhop/contract/timestamp.hpp"
#include "bellhop/core/poison.hpp"
#include "bellhop/json/write.hpp"
#include "bellhop/inbound/lua.hpp"

namespace bellhop::gateway {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using sys_clock = std::chrono::system_clock;

constexpr auto warn_every = std::chrono::seconds(30);
// The largest inbound message Bellhop reads back (ingest writes far smaller envelopes).
constexpr json::limits element_limits{.max_bytes = 1 << 20, .max_depth = 32};
constexpr std::string_view scan_count = "1000";

// MATCH pattern escaping: the key prefix is configuration and may hold glob characters.
// A string member of a JSON object, or empty.
std::string_view string_member(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

class inbound_reaper::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(asio::any_io_executor ex, broker::broker& redis, const contract::key_space& keys,
       const inbound_options& options, metrics_registry& metrics)
      : strand_(asio::make_strand(ex)),
        timer_(strand_),
        redis_(redis),
        keys_(keys),
        options_(options),
        interval_(std::max(1, options.reaper_interval_ms)),
        scan_interval_(std::max(1, options.consumer_scan_interval_ms)),
        token_(contract::make_random_hex(16)),
        processing_prefix_(keys.inbound_processing("")),
        processing_match_(contract::glob_escape(processing_prefix_) + "*"),
        lock_(broker::script::make("lock", std::string(lua::lock))),
        reap_(broker::script::make("reap_consumer", std::string(lua::reap_consumer))),
        publish_(broker::script::make("publish_event", std::string(lua::publish_event))),
        set_status_(
            broker::script::make("set_status_if_exists", std::string(lua::set_status_if_exists))),
        depth_(metrics
                   .add_gauge("bellhop_inbound_queue_depth",
                              "Messages waiting in inbound:messages for an AI-engine consumer.")
                   .labels({})),
        in_flight_(metrics
                       .add_gauge("bellhop_inbound_in_flight",
                                  "Messages taken by consumers and not yet acknowledged "
                                  "(measured by the process holding the reaper lease; 0 on "
                                  "the others).")
                       .labels({})),
        oldest_age_(metrics
                        .add_gauge("bellhop_inbound_oldest_age_seconds",
                                   "Age (by received_at) of the next message consumers will "
                                   "take from inbound:messages; 0 when the queue is empty.")
                        .labels({})),
        leader_gauge_(metrics
                          .add_gauge("bellhop_inbound_reaper_leader",
                                     "Whether this process holds the inbound reaper lease.")
                          .labels({})),
        redeliveries_(metrics
                          .add_counter("bellhop_inbound_redeliveries_total",
                                       "Messages of dead consumers returned to inbound:messages.")
                          .labels({})),
        dead_letters_(metrics
                          .add_counter("bellhop_inbound_dead_letters_total",
                                       "Messages moved to inbound:messages:dead after "
                                       "max_deliveries failed deliveries.")
                          .labels({})),
        errors_(metrics
                    .add_counter("bellhop_inbound_reaper_errors_total",
                                 "Failed Redis operations of the inbound reaper (retried on the "
                                 "next tick).")
                    .labels({})),
        runs_(metrics
                  .add_counter("bellhop_inbound_reaper_runs_total",
                               "Complete reaper passes over the registered consumers by this "
                               "process (as lease holder).")
                  .labels({})),
        poison_(poison_metric(metrics)) {}

  void start() {
    asio::post(strand_, [self = shared_from_this()] {
      if (self->stopped_ || self->started_) return;
      self->started_ = true;
      self->tick();
    });
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    // Posted from here, not from the strand: the io_context may not run any more.
    if (leader_.load())
      redis_.eval(lock_, {keys_.reaper_lock()}, {token_, "release"}, strand_,
                  [](error_code, broker::reply) {});
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

 private:
  // One tick's work; lives as long as its commands are in flight.
  struct pass {
    bool leader = false;
    std::set<std::string> consumers;  // registered or found by the scan (SCAN may repeat keys)
    std::set<std::string> scanned;    // consumers whose processing list the scan found
    int pending = 0;
    std::uint64_t in_flight = 0;
    bool in_flight_known = true;
    std::vector<std::string> dead_ids;  // for one summary log line
  };
  using pass_ptr = std::shared_ptr<pass>;

  void tick() {
    if (stopped_) return;
    auto p = std::make_shared<pass>();
    redis_.eval(lock_, {keys_.reaper_lock()},
                {token_, "acquire", std::to_string(3 * interval_.count())}, strand_,
                [self = shared_from_this(), p](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec) {
                    self->error("taking the reaper lease", ec, r);
                    self->schedule();
                    return;
                  }
                  p->leader = r.is_integer() && r.integer() == 1;
                  if (p->leader != self->leader_.exchange(p->leader)) {
                    spdlog::info("inbound reaper: {} the lease {}",
                                 p->leader ? "this process holds" : "another process holds",
                                 self->keys_.reaper_lock());
                    // A new lease holder scans at once: processing lists of consumers that
                    // never registered may have waited for the previous holder's next scan.
                    if (p->leader) self->next_scan_ = {};
                  }
                  self->leader_gauge_.set(p->leader ? 1 : 0);
                  if (!p->leader)
                    self->reap_and_measure(p);
                  else if (std::chrono::steady_clock::now() >= self->next_scan_)
                    self->scan(p, "0");
                  else
                    self->read_registry(p);
                });
  }

  // The safety net for consumers that do not SADD themselves to inbound:messages:consumers
  // (older engines, bugs): a full SCAN for processing lists, every consumer_scan_interval_ms.
  void scan(const pass_ptr& p, std::string cursor) {
    redis_.post(
        {"SCAN", std::move(cursor), "MATCH", processing_match_, "COUNT", std::string(scan_count),
         "TYPE", "list"},
        strand_, [self = shared_from_this(), p](error_code ec, broker::reply r) {
          if (self->stopped_) return;
          const auto& e = r.elements();
          if (ec || !r.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_array()) {
            self->error("SCAN for processing lists", ec, r);
            self->schedule();
            return;
          }
          for (const auto& key : e[1].elements())
            if (key.is_string() && key.str().size() > self->processing_prefix_.size())
              self->add_consumer(p->scanned, key.str().substr(self->processing_prefix_.size()));
          if (e[0].str() != "0") {
            self->scan(p, e[0].str());
            return;
          }
          self->next_scan_ = std::chrono::steady_clock::now() + self->scan_interval_;
          self->read_registry(p);
        });
  }

  // SMEMBERS of the registry; consumers the scan found outside it are added (and named once
  // in the log), so from now on they are checked every tick like the others.
  void read_registry(const pass_ptr& p) {
    redis_.post({"SMEMBERS", keys_.inbound_consumers()}, strand_,
                [self = shared_from_this(), p](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec || !r.is_array()) {
                    self->error("SMEMBERS of the consumer registry", ec, r);
                    self->schedule();
                    return;
                  }
                  for (const auto& name : r.elements())
                    if (name.is_string() && !name.str().empty())
                      self->add_consumer(p->consumers, name.str());
                  self->register_unknown(p);
                  self->reap_and_measure(p);
                });
  }

  // A consumer name longer than any engine's (docs/ai-engine.md) is not one: it is skipped,
  // never logged, and said once.
  void add_consumer(std::set<std::string>& into, const std::string& name) {
    if (name.size() <= contract::id_limits::consumer_name) {
      into.insert(name);
      return;
    }
    if (!long_name_warned_) {
      long_name_warned_ = true;
      spdlog::warn("inbound reaper: a consumer name of {} bytes (over {}) is skipped", name.size(),
                   contract::id_limits::consumer_name);
    }
  }
  bool long_name_warned_ = false;

  void register_unknown(const pass_ptr& p) {
    std::vector<std::string> add{"SADD", keys_.inbound_consumers()};
    for (const auto& name : p->scanned) {
      if (p->consumers.contains(name)) continue;
      p->consumers.insert(name);
      add.push_back(name);
      if (unregistered_warned_.size() < 1000 && unregistered_warned_.insert(name).second)
        spdlog::warn(
            "inbound reaper: consumer '{}' has a processing list but is not in {}; "
            "added it (consumers should SADD their name there with every heartbeat, see "
            "docs/ai-engine.md)",
            name, keys_.inbound_consumers());
    }
    if (add.size() == 2) return;
    ++p->pending;
    redis_.post(std::move(add), strand_, [self = shared_from_this(), p](error_code ec,
                                                                         broker::reply r) {
      if (self->stopped_) return;
      if (ec || r.is_error()) self->error("SADD to the consumer registry", ec, r);
      self->done(p);
    });
  }

  // One pipelined round: a reap script per processing list (leader only), then the gauges'
  // reads, which Redis runs after the scripts, so they see the queue as reaped.
  void reap_and_measure(const pass_ptr& p) {
    auto self = shared_from_this();
    if (p->leader) {
      for (const auto& consumer : p->consumers) {
        const auto list = keys_.inbound_processing(consumer);
        ++p->pending;
        redis_.eval(reap_,
                    {list, keys_.inbound_heartbeat(consumer), keys_.inbound(), keys_.inbound_dead(),
                     keys_.inbound_deliveries(), keys_.inbound_consumers()},
                    {std::to_string(options_.max_deliveries),
                     std::to_string(options_.message_ttl_s), consumer},
                    strand_, [self, p, list](error_code ec, broker::reply r) {
                      if (self->stopped_) return;
                      self->on_reaped(p, list, ec, r);
                      self->done(p);
                    });
      }
    }
    ++p->pending;
    redis_.post({"LLEN", keys_.inbound()}, strand_, [self, p](error_code ec, broker::reply r) {
      if (self->stopped_) return;
      if (ec || !r.is_integer())
        self->error("LLEN of the inbound queue", ec, r);
      else
        self->depth_.set(static_cast<double>(r.integer()));
      self->done(p);
    });
    ++p->pending;
    redis_.post({"LINDEX", keys_.inbound(), "-1"}, strand_,
                [self, p](error_code ec, broker::reply r) {
                  if (self->stopped_) return;
                  if (ec)
                    self->error("LINDEX of the inbound queue", ec, r);
                  else
                    self->oldest_age_.set(self->age_seconds(r));
                  self->done(p);
                });
    if (p->leader) {
      for (const auto& consumer : p->consumers) {
        ++p->pending;
        redis_.post({"LLEN", keys_.inbound_processing(consumer)}, strand_, [self, p](error_code ec, broker::reply r) {
          if (self->stopped_) return;
          if (ec || !r.is_integer()) {
            self->error("LLEN of a processing list", ec, r);
            p->in_flight_known = false;
          } else {
            p->in_flight += static_cast<std::uint64_t>(r.integer());
          }
          self->done(p);
        });
      }
    }
  }

  // The age of the queue's oldest message; a poison one counts as 0 and is reported once (the
  // gauge reads it again every tick until an engine takes it).
  double age_seconds(const broker::reply& oldest) {
    if (!oldest.is_string()) return 0;  // empty queue
    rapidjson::Document doc;
    const auto parsed = json::parse(oldest.str(), doc, element_limits);
    if (!parsed || !doc.IsObject()) {
      const auto digest = std::hash<std::string>{}(oldest.str());
      if (digest != last_poison_oldest_) {
        last_poison_oldest_ = digest;
        report_poison(poison_, "inbound_oldest", keys_.inbound(), poison_reason(parsed),
                      parsed ? "the oldest message is not a JSON object" : parsed.message());
      }
      return 0;
    }
    auto received = contract::parse_rfc3339(string_member(doc, "received_at"));
    if (!received) return 0;
    const std::chrono::duration<double> age = sys_clock::now() - *received;
    return std::max(0.0, age.count());
  }

  void on_reaped(const pass_ptr& p, const std::string& list, error_code ec,
                 const broker::reply& r) {
    const auto& e = r.elements();
    if (ec || !r.is_array() || e.size() != 3 || !e[0].is_integer() || !e[1].is_array() ||
        !e[2].is_array() || e[1].elements().size() != e[2].elements().size()) {
      error("reaping " + list, ec, r);
      return;
    }
    const auto requeued = e[0].integer();
    if (requeued < 0) return;  // the consumer is alive
    const auto& dead = e[1].elements();
    if (requeued > 0) redeliveries_.inc(static_cast<std::uint64_t>(requeued));
    if (requeued > 0 || !dead.empty())
      spdlog::info(
          "inbound reaper: consumer '{}' has no heartbeat; {} messages returned to {}, "
          "{} moved to {}",
          std::string_view(list).substr(processing_prefix_.size()), requeued, keys_.inbound(),
          dead.size(), keys_.inbound_dead());
    for (std::size_t i = 0; i < dead.size(); ++i)
      dead_letter(p, dead[i].str(), e[2].elements()[i].integer());
  }

  // Marks a dead-lettered message failed and tells its property's dashboards.
  void dead_letter(const pass_ptr& p, const std::string& element, std::int64_t deliveries) {
    dead_letters_.inc();
    rapidjson::Document doc;
    const auto parsed = json::parse(element, doc, element_limits);
    if (!parsed || !doc.IsObject()) {
      report_poison(poison_, "inbound", keys_.inbound_dead(), poison_reason(parsed),
                    parsed ? "a dead-lettered element is not a JSON object" : parsed.message());
      p->dead_ids.push_back("(not a JSON object)");
      return;
    }
    const auto id = string_member(doc, "id");
    const auto property = string_member(doc, "property_id");
    const auto conversation = string_member(doc, "conversation_id");
    p->dead_ids.push_back(id.empty() ? "(no id)" : std::string(id));
    if (id.empty())
      report_poison(poison_, "inbound", keys_.inbound_dead(), "invalid",
                    "a dead-lettered element has no string id");
    auto self = shared_from_this();
    if (!id.empty()) {
      ++p->pending;
      redis_.eval(set_status_, {keys_.message(id)}, {"failed"}, strand_,
                  [self, p](error_code ec, broker::reply r) {
                    if (self->stopped_) return;
                    if (ec) self->error("setting a dead letter's status", ec, r);
                    self->done(p);
                  });
    }
    if (property.empty()) return;
    // The message.status event's data; publish_event.lua writes the event around it.
    rapidjson::StringBuffer out;
    json::writer w(out);
    w.StartObject();
    json::put_or_null(w, "id", id);
    json::put(w, "status", "failed");
    json::put(w, "reason", "max_deliveries");
    w.Key("deliveries");
    w.Int64(deliveries);
    json::put_or_null(w, "conversation_id", conversation);
    w.EndObject();
    ++p->pending;
    redis_.eval(
        publish_, {keys_.property_seq(property), keys_.property_events(property)},
        {keys_.property_channel(property), std::to_string(options_.history_max),
         std::string(property), "message.status", std::string(out.GetString(), out.GetSize()),
         contract::format_timestamp(sys_clock::now())},
        strand_, [self, p](error_code ec, broker::reply r) {
          if (self->stopped_) return;
          if (ec) self->error("publishing a message.status event", ec, r);
          self->done(p);
        });
  }

  void done(const pass_ptr& p) {
    if (--p->pending > 0) return;
    if (p->leader) {
      if (p->in_flight_known) in_flight_.set(static_cast<double>(p->in_flight));
      runs_.inc();
    } else {
      in_flight_.set(0);
    }
    if (!p->dead_ids.empty())
      spdlog::warn(
          "inbound reaper: {} messages failed {} deliveries and were moved to {} "
          "(first: {})",
          p->dead_ids.size(), options_.max_deliveries, keys_.inbound_dead(), p->dead_ids.front());
    schedule();
  }

  void schedule() {
    if (stopped_) return;
    timer_.expires_after(interval_);
    timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->tick();
    });
  }

  void error(std::string_view what, error_code ec, const broker::reply& r) {
    errors_.inc();
    const auto now = std::chrono::steady_clock::now();
    if (warned_ && now - last_warn_ < warn_every) return;
    warned_ = true;
    last_warn_ = now;
    const std::string detail = r.is_error() ? r.str()
                               : ec         ? ec.message()
                                            : "unexpected reply " + r.to_string();
    spdlog::warn(
        "inbound reaper: {} failed: {}; retrying every {} ms ({} errors so far, "
        "logged at most every {} s)",
        what, detail, interval_.count(), errors_.value(), warn_every.count());
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  broker::broker& redis_;
  const contract::key_space keys_;
  const inbound_options options_;
  const std::chrono::milliseconds interval_;
  const std::chrono::milliseconds scan_interval_;
  const std::string token_;  // our value of the lease key
  const std::string processing_prefix_;
  const std::string processing_match_;
  const broker::script lock_, reap_, publish_, set_status_;
  gauge& depth_;
  gauge& in_flight_;
  gauge& oldest_age_;
  gauge& leader_gauge_;
  counter& redeliveries_;
  counter& dead_letters_;
  counter& errors_;
  counter& runs_;
  counter_family& poison_;
  std::size_t last_poison_oldest_ = 0;  // digest of the poison oldest message reported last

  std::atomic<bool> stopped_{false};
  std::atomic<bool> leader_{false};
  // Strand only:
  bool started_ = false;
  bool warned_ = false;
  std::chrono::steady_clock::time_point next_scan_{};  // {} = scan on the next leader tick
  std::set<std::string> unregistered_warned_;          // consumers named in a warning already
  std::chrono::steady_clock::time_point last_warn_{};
};

inbound_reaper::inbound_reaper(asio::any_io_executor ex, broker::broker& redis,
                               const contract::key_space& keys, const inbound_options& options,
                               metrics_registry& metrics)
    : impl_(std::make_shared<impl>(std::move(ex), redis, keys, options, metrics)) {}

inbound_reaper::~inbound_reaper() {
  impl_->stop();
}

void inbound_reaper::start() {
  impl_->start();
}

void inbound_reaper::stop() {
  impl_->stop();
}

}  // namespace bellhop::gateway
