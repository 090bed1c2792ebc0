// The inbound reaper against a real redis-server, running in-process with short intervals.
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <ctime>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "bellhop/inbound/inbound_reaper.hpp"
#include "support/io_thread.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
using broker::reply;
namespace asio = boost::asio;

using test::io_thread;

std::string timestamp(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = ms.count() / 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms.count() % 1000));
  return out;
}

// An envelope as bellhop queues it; ids sort by number.
std::string envelope(
    int n, const std::string& property = "hotel-test",
    std::chrono::system_clock::time_point received = std::chrono::system_clock::now()) {
  char id[32];
  std::snprintf(id, sizeof id, "01TESTMSG%017d", n);
  return std::string(R"({"id":")") + id + R"(","property_id":")" + property +
         R"(","channel":"whatsapp","external_id":"wamid.)" + std::to_string(n) +
         R"(","from":"+4915100","text":"message )" + std::to_string(n) +
         R"(","conversation_id":"c_)" + std::to_string(n % 7) + R"(","received_at":")" +
         timestamp(received) + R"(","direction":"inbound"})";
}

std::string id_of(const std::string& element) {
  rapidjson::Document d;
  d.Parse(element.c_str());
  return d.IsObject() && d.HasMember("id") && d["id"].IsString() ? d["id"].GetString() : "";
}

// One bellhop process, as far as the reaper is concerned.
struct gateway_instance {
  gateway_instance(const broker::redis_endpoint& ep, asio::any_io_executor ex,
                   const contract::key_space& keys, const inbound_options& inbound)
      : redis(options(ep)) {
    redis.start();
    reaper = std::make_unique<inbound_reaper>(ex, redis, keys, inbound, metrics);
    reaper->start();
  }

  static broker::broker_options options(const broker::redis_endpoint& ep) {
    return test::fast_broker_options(ep);
  }

  // A sample of the /metrics exposition, or -1 if absent.
  double metric(const std::string& name) const {
    const auto text = metrics.render();
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + name.size() + 2));
  }

  metrics_registry metrics;
  broker::broker redis;
  std::unique_ptr<inbound_reaper> reaper;
};

class InboundReaper : public ::testing::Test {
 protected:
  InboundReaper() {
    options_.reaper_interval_ms = 100;
    options_.max_deliveries = 5;
    options_.history_max = 100;
    client_.start();
    gateway_ = start_gateway();
  }

  ~InboundReaper() override {
    // Reapers first (their replies are then ignored), then the brokers with the io thread
    // still running, so every completion finds a live handler.
    for (auto* g : {gateway_.get(), other_.get()})
      if (g) g->reaper->stop();
    io_.drain();
    for (auto* g : {gateway_.get(), other_.get()})
      if (g) g->redis.stop();
    client_.stop();
    io_.drain();
  }

  std::unique_ptr<gateway_instance> start_gateway() {
    return std::make_unique<gateway_instance>(redis_.unix_endpoint(), io_.executor(), keys_,
                                              options_);
  }

  reply run(broker::command cmd) {
    std::promise<std::pair<error_code, reply>> p;
    auto f = p.get_future();
    auto text = cmd.front();
    client_.post(std::move(cmd), io_.executor(), [&p](error_code ec, reply r) {
      p.set_value({ec, std::move(r)});
    });
    auto [ec, r] = f.get();
    EXPECT_FALSE(ec) << text << ": " << ec.message() << " " << r.to_string();
    return r;
  }

  std::vector<std::string> lrange(const std::string& key) {
    std::vector<std::string> out;
    const auto r = run({"LRANGE", key, "0", "-1"});
    for (const auto& e : r.elements()) out.push_back(e.str());
    return out;
  }
  // A list in the order consumers take it (right end first).
  std::vector<std::string> take_order(const std::string& key) {
    auto v = lrange(key);
    return {v.rbegin(), v.rend()};
  }
  std::int64_t llen(const std::string& key) { return run({"LLEN", key}).integer(); }
  bool exists(const std::string& key) { return run({"EXISTS", key}).integer() == 1; }

  // Moves n elements from `from` into the consumer's processing list the way BLMOVE does,
  // atomically, so the reaper never sees a half-taken batch. The consumer is in the registry,
  // as its first heartbeat put it there (registered = false: an engine that never registers).
  void take(const std::string& consumer, int n, const std::string& from = {},
            bool registered = true) {
    run({"EVAL",
         "for i = 1, tonumber(ARGV[1]) do redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', "
         "'LEFT') end if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[3]) end",
         "3", from.empty() ? keys_.inbound() : from, keys_.inbound_processing(consumer),
         keys_.inbound_consumers(), std::to_string(n), registered ? "1" : "0", consumer});
  }

  // A heartbeat as docs/ai-engine.md prescribes it: the key, then the registry.
  broker::command heartbeat_command(const std::string& consumer) const {
    return {"EVAL",
            "redis.call('SET', KEYS[1], 'alive', 'PX', ARGV[1]) "
            "redis.call('SADD', KEYS[2], ARGV[2])",
            "2",
            keys_.inbound_heartbeat(consumer),
            keys_.inbound_consumers(),
            std::to_string(heartbeat_ms),
            consumer};
  }
  void heartbeat(const std::string& consumer) { run(heartbeat_command(consumer)); }

  std::int64_t scan_calls() {
    const auto info = run({"INFO", "commandstats"}).str();
    const auto at = info.find("cmdstat_scan:calls=");
    return at == std::string::npos ? 0 : std::stoll(info.substr(at + 19));
  }

  // Waits until `g` completes `n` more scans than it had when called.
  bool wait_runs(gateway_instance& g, int n, std::chrono::milliseconds timeout = 10s) {
    const double start = g.metric("bellhop_inbound_reaper_runs_total");
    return test::eventually(
        [&] { return g.metric("bellhop_inbound_reaper_runs_total") >= start + n; }, timeout);
  }

  // Refreshes a consumer's heartbeat every 50 ms until destroyed, like a live AI engine.
  class live_consumer {
   public:
    live_consumer(InboundReaper& t, std::string name) : t_(t), name_(std::move(name)) {
      t_.heartbeat(name_);
      thread_ = std::thread([this] {
        while (!stop_) {
          t_.client_.post(t_.heartbeat_command(name_), t_.io_.executor(),
                          [](error_code, reply) {});
          std::this_thread::sleep_for(50ms);
        }
      });
    }
    ~live_consumer() { die(); }
    void die() {
      stop_ = true;
      if (thread_.joinable()) thread_.join();
    }

   private:
    InboundReaper& t_;
    std::string name_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };

  test::redis_server redis_;
  io_thread io_;
  // Glob characters in the prefix: the reaper's SCAN pattern must escape them.
  const contract::key_space keys_{"t[1]*:"};
  inbound_options options_;
  static constexpr int heartbeat_ms = 300;  // the test consumers' heartbeat lifetime
  broker::broker client_{gateway_instance::options(redis_.unix_endpoint())};  // the "AI engine"
  std::unique_ptr<gateway_instance> gateway_;
  std::unique_ptr<gateway_instance> other_;
};

TEST_F(InboundReaper, ConsumerWithLiveHeartbeatIsNeverReaped) {
  for (int i = 0; i < 10; ++i) run({"LPUSH", keys_.inbound(), envelope(i)});
  {
    live_consumer alive(*this, "alive");
    take("alive", 10);
    // Ten scans at 100 ms span more than three visibility timeouts (300 ms).
    ASSERT_TRUE(wait_runs(*gateway_, 10));
    EXPECT_EQ(llen(keys_.inbound_processing("alive")), 10);
    EXPECT_EQ(llen(keys_.inbound()), 0);
    EXPECT_FALSE(exists(keys_.inbound_deliveries()));
    EXPECT_EQ(gateway_->metric("bellhop_inbound_redeliveries_total"), 0);
  }
  // Once the heartbeat stops, the same messages do come back.
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("alive")); }));
  EXPECT_EQ(llen(keys_.inbound()), 10);
}

TEST_F(InboundReaper, HundredMessagesOfADeadConsumerReturnToTheFrontInOrder) {
  std::vector<std::string> sent;
  for (int i = 0; i < 100; ++i) {
    sent.push_back(envelope(i));
    run({"LPUSH", keys_.inbound(), sent.back()});
  }
  take("crashed", 100);  // never heartbeats: as if it died right after taking
  // Newer messages arrive behind them meanwhile.
  for (int i = 100; i < 110; ++i) {
    sent.push_back(envelope(i));
    run({"LPUSH", keys_.inbound(), sent.back()});
  }
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("crashed")); }));
  EXPECT_EQ(take_order(keys_.inbound()), sent) << "requeued at the front, in their order";

  // Another consumer takes all of them, each once, oldest first.
  live_consumer second(*this, "second");
  take("second", 110);
  EXPECT_EQ(take_order(keys_.inbound_processing("second")), sent);
  EXPECT_EQ(llen(keys_.inbound()), 0);
  EXPECT_EQ(llen(keys_.inbound_dead()), 0);
  // One failed delivery each, keyed by envelope id.
  const auto deliveries = run({"HGETALL", keys_.inbound_deliveries()}).elements();
  ASSERT_EQ(deliveries.size(), 200u);
  for (std::size_t i = 0; i < deliveries.size(); i += 2) {
    EXPECT_EQ(deliveries[i].str().substr(0, 9), "01TESTMSG");
    EXPECT_EQ(deliveries[i + 1].str(), "1");
  }
  EXPECT_EQ(gateway_->metric("bellhop_inbound_redeliveries_total"), 100);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_dead_letters_total"), 0);
}

TEST_F(InboundReaper, MessageWhoseConsumerAlwaysDiesIsDeadAfterMaxDeliveries) {
  const std::string property = "hotel-dying";
  const std::string msg = envelope(7, property);
  const std::string id = id_of(msg);
  const std::string junk = "not json {";
  const std::string junk_id = run({"EVAL", "return redis.sha1hex(ARGV[1])", "0", junk}).str();
  run({"HSET", keys_.message(id), "id", id, "status", "queued", "property_id", property});
  // Earlier events of the property: the dead letter's event must come next.
  run({"SET", keys_.property_seq(property), "41"});
  run({"XADD", keys_.property_events(property), "41-0", "event", "{\"seq\":41}"});

  std::mutex m;
  std::vector<std::string> events;
  std::atomic<bool> subscribed{false};
  client_.subscribe(
      keys_.property_channel(property), io_.executor(),
      [&](const std::string&, std::shared_ptr<const std::string> payload) {
        std::lock_guard lock(m);
        events.push_back(*payload);
      },
      [&](const std::string&) { subscribed = true; });
  ASSERT_TRUE(test::eventually([&] { return subscribed.load(); }));

  run({"LPUSH", keys_.inbound(), msg, junk});
  for (int delivery = 1; delivery <= options_.max_deliveries; ++delivery) {
    SCOPED_TRACE("delivery " + std::to_string(delivery));
    ASSERT_TRUE(test::eventually([&] { return llen(keys_.inbound()) == 2; }));
    EXPECT_EQ(take_order(keys_.inbound()), (std::vector<std::string>{msg, junk}));
    take("ghost", 2);  // and dies without a heartbeat, every time
    ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("ghost")); }));
    if (delivery < options_.max_deliveries) {
      EXPECT_EQ(run({"HGET", keys_.inbound_deliveries(), id}).str(), std::to_string(delivery));
      EXPECT_EQ(run({"HGET", keys_.inbound_deliveries(), junk_id}).str(), std::to_string(delivery));
      EXPECT_EQ(llen(keys_.inbound_dead()), 0);
    }
  }
  EXPECT_EQ(llen(keys_.inbound()), 0);
  EXPECT_EQ(take_order(keys_.inbound_dead()), (std::vector<std::string>{msg, junk}));
  EXPECT_FALSE(exists(keys_.inbound_deliveries())) << "entries of dead letters are deleted";
  EXPECT_EQ(run({"HGET", keys_.message(id), "status"}).str(), "failed");

  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(m);
    return !events.empty();
  }));
  std::string event;
  {
    std::lock_guard lock(m);
    ASSERT_EQ(events.size(), 1u) << "the junk element names no property";
    event = events.front();
  }
  rapidjson::Document d;
  d.Parse(event.c_str());
  ASSERT_TRUE(d.IsObject()) << event;
  EXPECT_EQ(d["seq"].GetInt64(), 42);
  EXPECT_STREQ(d["property_id"].GetString(), property.c_str());
  EXPECT_STREQ(d["event"].GetString(), "message.status");
  ASSERT_TRUE(d["data"].IsObject()) << event;
  EXPECT_STREQ(d["data"]["id"].GetString(), id.c_str());
  EXPECT_STREQ(d["data"]["status"].GetString(), "failed");
  EXPECT_STREQ(d["data"]["reason"].GetString(), "max_deliveries");
  EXPECT_EQ(d["data"]["deliveries"].GetInt(), options_.max_deliveries);
  EXPECT_STREQ(d["data"]["conversation_id"].GetString(), "c_0");
  const std::string ts = d["ts"].GetString();
  EXPECT_EQ(ts.size(), 24u) << ts;
  EXPECT_EQ(ts.back(), 'Z') << ts;
  // The same event is in the property's history under its seq.
  auto history = run({"XRANGE", keys_.property_events(property), "42-0", "42-0"});
  ASSERT_EQ(history.elements().size(), 1u) << history.to_string();
  const auto& fields = history.elements()[0].elements()[1].elements();
  ASSERT_EQ(fields.size(), 2u);
  EXPECT_EQ(fields[0].str(), "event");
  EXPECT_EQ(fields[1].str(), event);
  EXPECT_EQ(run({"GET", keys_.property_seq(property)}).str(), "42");

  EXPECT_EQ(gateway_->metric("bellhop_inbound_dead_letters_total"), 2);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_redeliveries_total"),
            2 * (options_.max_deliveries - 1));
}

TEST_F(InboundReaper, TwoReapersNeverRequeueAMessageTwice) {
  other_ = start_gateway();
  const std::string staging = "staging";
  int next = 0;
  std::set<std::string> expected;
  // Dead consumers appear while both reapers run.
  auto crash_consumers = [&](int consumers, int each) {
    for (int c = 0; c < consumers; ++c) {
      broker::command push = {"LPUSH", staging};
      for (int i = 0; i < each; ++i) {
        push.push_back(envelope(next++));
        expected.insert(push.back());
      }
      run(std::move(push));
      take("crash-" + std::to_string(next), each, staging);
    }
  };
  auto all_reaped = [&] {
    return test::eventually([&] {
      return run({"SCAN", "0", "MATCH", "t\\[1\\]\\*:inbound:messages:processing:*", "COUNT",
                  "10000"})
          .elements()[1]
          .elements()
          .empty();
    });
  };
  {
    // The lease only saves work; safety is the script's. Delete the lease under the reapers
    // (as if it expired mid-pass) so both reap at once, the same lists included.
    std::atomic<bool> stop{false};
    std::thread thief([&] {
      while (!stop) {
        client_.post({"DEL", keys_.reaper_lock()}, io_.executor(), [](error_code, reply) {});
        std::this_thread::sleep_for(5ms);
      }
    });
    for (int round = 0; round < 10; ++round) {
      crash_consumers(5, 20);
      ASSERT_TRUE(wait_runs(*gateway_, 1));
      ASSERT_TRUE(wait_runs(*other_, 1));
    }
    stop = true;
    thief.join();
  }
  ASSERT_TRUE(all_reaped());
  EXPECT_GT(gateway_->metric("bellhop_inbound_reaper_runs_total"), 0);
  EXPECT_GT(other_->metric("bellhop_inbound_reaper_runs_total"), 0);
  // Exactly one of them holds the lease.
  ASSERT_TRUE(test::eventually([&] {
    return gateway_->metric("bellhop_inbound_reaper_leader") +
               other_->metric("bellhop_inbound_reaper_leader") ==
           1;
  }));
  // The lease holder stops (releasing the lease): the other one takes over.
  auto& holder = gateway_->metric("bellhop_inbound_reaper_leader") == 1 ? *gateway_ : *other_;
  auto& successor = &holder == gateway_.get() ? *other_ : *gateway_;
  holder.reaper->stop();
  crash_consumers(5, 20);
  ASSERT_TRUE(all_reaped());
  EXPECT_EQ(successor.metric("bellhop_inbound_reaper_leader"), 1);

  const auto queued = lrange(keys_.inbound());
  EXPECT_EQ(queued.size(), expected.size()) << "no message lost or duplicated";
  EXPECT_EQ(std::set<std::string>(queued.begin(), queued.end()), expected);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_redeliveries_total") +
                other_->metric("bellhop_inbound_redeliveries_total"),
            static_cast<double>(expected.size()));
  EXPECT_GT(successor.metric("bellhop_inbound_redeliveries_total"), 0);
  const auto deliveries = run({"HVALS", keys_.inbound_deliveries()}).elements();
  EXPECT_EQ(deliveries.size(), expected.size());
  for (const auto& v : deliveries) EXPECT_EQ(v.str(), "1");
}

TEST_F(InboundReaper, TicksReadTheRegistryAndDoNotScanTheKeyspace) {
  ASSERT_TRUE(wait_runs(*gateway_, 2));  // the first tick as lease holder scans once
  const auto scans = scan_calls();
  for (int i = 0; i < 1000; ++i) run({"SET", "unrelated:" + std::to_string(i), "x"});
  run({"LPUSH", keys_.inbound(), envelope(1), envelope(2)});
  take("registered", 2);
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("registered")); }));
  ASSERT_TRUE(wait_runs(*gateway_, 5));
  EXPECT_EQ(scan_calls(), scans) << "consumer_scan_interval_ms is 60 s: no SCAN per tick";
  EXPECT_EQ(llen(keys_.inbound()), 2);
  EXPECT_EQ(run({"SCARD", keys_.inbound_consumers()}).integer(), 0)
      << "a reaped consumer leaves the registry";
}

TEST_F(InboundReaper, ScanFindsConsumersThatNeverRegistered) {
  // A reaper with a short scan interval replaces the fixture's (which scanned once at start).
  gateway_->reaper->stop();
  options_.consumer_scan_interval_ms = 300;
  other_ = start_gateway();
  ASSERT_TRUE(test::eventually(
      [&] { return other_->metric("bellhop_inbound_reaper_leader") == 1; }));
  run({"LPUSH", keys_.inbound(), envelope(1), envelope(2), envelope(3)});
  take("old-engine", 3, {}, /*registered=*/false);
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("old-engine")); }));
  EXPECT_EQ(llen(keys_.inbound()), 3);
  EXPECT_EQ(other_->metric("bellhop_inbound_redeliveries_total"), 3);

  // An unregistered engine that is alive is registered by the scan and left alone.
  run({"SET", keys_.inbound_heartbeat("quiet"), "alive", "PX", "60000"});
  take("quiet", 1, {}, /*registered=*/false);
  ASSERT_TRUE(test::eventually(
      [&] { return run({"SISMEMBER", keys_.inbound_consumers(), "quiet"}).integer() == 1; }));
  EXPECT_EQ(llen(keys_.inbound_processing("quiet")), 1);
  // From now on every tick checks it: once its heartbeat is gone it is reaped without a scan.
  run({"DEL", keys_.inbound_heartbeat("quiet")});
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("quiet")); }));
  EXPECT_EQ(llen(keys_.inbound()), 3);
}

TEST_F(InboundReaper, GaugesReportDepthInFlightAndOldestAge) {
  ASSERT_TRUE(wait_runs(*gateway_, 1));
  EXPECT_EQ(gateway_->metric("bellhop_inbound_queue_depth"), 0);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_in_flight"), 0);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_oldest_age_seconds"), 0);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_reaper_leader"), 1);

  const auto now = std::chrono::system_clock::now();
  run({"LPUSH", "staging", envelope(1), envelope(2), envelope(3), envelope(4), envelope(5),
       envelope(6), envelope(7)});
  live_consumer busy(*this, "busy");
  take("busy", 7, "staging");
  run({"LPUSH", keys_.inbound(), envelope(10, "p", now - 120s), envelope(11), envelope(12)});
  ASSERT_TRUE(wait_runs(*gateway_, 2));
  EXPECT_EQ(gateway_->metric("bellhop_inbound_queue_depth"), 3);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_in_flight"), 7);
  const double age = gateway_->metric("bellhop_inbound_oldest_age_seconds");
  EXPECT_GE(age, 120);
  EXPECT_LT(age, 150);

  run({"DEL", keys_.inbound()});
  ASSERT_TRUE(wait_runs(*gateway_, 2));
  EXPECT_EQ(gateway_->metric("bellhop_inbound_queue_depth"), 0);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_oldest_age_seconds"), 0);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_reaper_errors_total"), 0);
  const auto text = gateway_->metrics.render();
  for (const char* family :
       {"# TYPE bellhop_inbound_queue_depth gauge", "# TYPE bellhop_inbound_in_flight gauge",
        "# TYPE bellhop_inbound_oldest_age_seconds gauge",
        "# TYPE bellhop_inbound_redeliveries_total counter",
        "# TYPE bellhop_inbound_dead_letters_total counter",
        "# TYPE bellhop_inbound_reaper_errors_total counter"})
    EXPECT_NE(text.find(family), std::string::npos) << family;
}

TEST_F(InboundReaper, RedisOutageIsCountedAndReapingResumes) {
  ASSERT_TRUE(wait_runs(*gateway_, 1));
  redis_.stop();
  ASSERT_TRUE(test::eventually(
      [&] { return gateway_->metric("bellhop_inbound_reaper_errors_total") >= 3; }));
  redis_.start();
  ASSERT_TRUE(test::eventually([&] { return client_.ready(); }));
  run({"LPUSH", keys_.inbound(), envelope(1), envelope(2)});
  take("after-outage", 2);
  ASSERT_TRUE(test::eventually([&] { return !exists(keys_.inbound_processing("after-outage")); }));
  EXPECT_EQ(llen(keys_.inbound()), 2);
  EXPECT_EQ(gateway_->metric("bellhop_inbound_redeliveries_total"), 2);
}

}  // namespace
}  // namespace bellhop::gateway
