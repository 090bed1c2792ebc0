#include <gtest/gtest.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "bellhop/broker/broker.hpp"
#include "support/io_thread.hpp"
#include "support/redis_server.hpp"

namespace bellhop::broker {
namespace {

using namespace std::chrono_literals;
using boost::system::error_code;
namespace asio = boost::asio;

struct result {
  error_code ec;
  reply value;
};

using test::io_thread;

class BrokerTest : public ::testing::Test {
 protected:
  broker_options options(const redis_endpoint& ep) { return test::fast_broker_options(ep); }

  result exec(broker& b, command cmd) {
    std::promise<result> p;
    auto f = p.get_future();
    b.post(std::move(cmd), io_.executor(), [&p](error_code ec, reply r) {
      p.set_value({ec, std::move(r)});
    });
    return f.get();
  }

  result eval(broker& b, const script& s, std::vector<std::string> keys,
              std::vector<std::string> args) {
    std::promise<result> p;
    auto f = p.get_future();
    b.eval(s, std::move(keys), std::move(args), io_.executor(), [&p](error_code ec, reply r) {
      p.set_value({ec, std::move(r)});
    });
    return f.get();
  }

  test::redis_server redis_;
  io_thread io_;
};

TEST_F(BrokerTest, AnswersOverTcpAndUnixSocket) {
  for (auto ep : {redis_.tcp_endpoint(), redis_.unix_endpoint()}) {
    broker b(options(ep));
    b.start();
    auto r = exec(b, {"SET", "greeting", std::string("hi\0there", 8)});
    ASSERT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.value, reply::make_status("OK"));
    r = exec(b, {"GET", "greeting"});
    EXPECT_EQ(r.value.str(), std::string("hi\0there", 8));
    EXPECT_TRUE(b.ready());
  }
}

TEST_F(BrokerTest, RedisErrorsAreReportedWithTheirText) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  auto r = exec(b, {"INCR", "k", "extra"});
  EXPECT_EQ(r.ec, make_error_code(errc::redis_error));
  ASSERT_TRUE(r.value.is_error());
  EXPECT_NE(r.value.str().find("wrong number of arguments"), std::string::npos);
  EXPECT_EQ(b.stats().errors, 1u);
}

TEST_F(BrokerTest, TenThousandCommandsFromEightThreadsKeepEachCallersOrder) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  constexpr int threads = 8;
  constexpr int per_thread = 1250;
  // One strand per caller: its handlers run in the order the broker completes them.
  std::vector<std::vector<std::int64_t>> seen(threads);
  std::atomic<int> remaining{threads * per_thread};
  std::atomic<int> failures{0};
  std::promise<void> all_done;
  std::vector<std::thread> callers;
  for (int t = 0; t < threads; ++t) {
    callers.emplace_back([&, t] {
      auto strand = asio::make_strand(io_.context());
      for (int i = 0; i < per_thread; ++i) {
        b.post({"RPUSH", "order:" + std::to_string(t), std::to_string(i)}, strand,
               [&, t](error_code ec, reply r) {
                 if (ec) failures++;
                 seen[t].push_back(r.integer());
                 if (--remaining == 0) all_done.set_value();
               });
      }
    });
  }
  for (auto& c : callers) c.join();
  ASSERT_EQ(all_done.get_future().wait_for(30s), std::future_status::ready);
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < threads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<std::size_t>(per_thread));
    for (int i = 0; i < per_thread; ++i) ASSERT_EQ(seen[t][i], i + 1) << "caller " << t;
    auto list = exec(b, {"LRANGE", "order:" + std::to_string(t), "0", "-1"});
    ASSERT_EQ(list.value.elements().size(), static_cast<std::size_t>(per_thread));
    for (int i = 0; i < per_thread; ++i)
      ASSERT_EQ(list.value.elements()[i].str(), std::to_string(i));
  }
  EXPECT_GE(b.stats().commands, static_cast<std::uint64_t>(threads * per_thread));
}

TEST_F(BrokerTest, AsyncExecWithUseFuture) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  // Completion tokens work too; the handler's associated executor receives the reply.
  std::promise<std::int64_t> p;
  b.async_exec({"INCRBY", "n", "41"},
               asio::bind_executor(io_.executor(), [&](error_code ec, reply r) {
                 p.set_value(ec ? -1 : r.integer());
               }));
  EXPECT_EQ(p.get_future().get(), 41);
}

TEST_F(BrokerTest, RestartMidStreamFailsPendingOnceThenRecovers) {
  broker b(options(redis_.tcp_endpoint()));
  b.start();
  ASSERT_FALSE(exec(b, {"PING"}).ec);

  constexpr int total = 20000;
  std::atomic<int> completions{0}, ok{0}, connection_errors{0}, other{0};
  std::mutex m;
  std::set<int> completed_ids;
  std::atomic<bool> duplicate{false};
  // Posted from this thread: the fixture's redis-server dies with the thread that started it.
  {
    for (int i = 0; i < total; ++i) {
      b.post({"INCR", "counter"}, io_.executor(), [&, i](error_code ec, reply) {
        {
          std::lock_guard lock(m);
          if (!completed_ids.insert(i).second) duplicate = true;
        }
        if (!ec) {
          ok++;
        } else if (ec == make_error_code(errc::connection_lost) ||
                   ec == make_error_code(errc::not_connected)) {
          connection_errors++;
        } else {
          other++;
        }
        completions++;
      });
      if (i == total / 4) {
        // Deterministic mid-stream kill: once the connection has carried some requests, freeze
        // Redis so the next ones are surely in flight (written, unanswered), then kill it.
        ASSERT_TRUE(test::eventually([&] { return ok.load() > 0; }, 10s));
        redis_.freeze();
      }
      if (i == total / 4 + 1000) redis_.restart();
    }
  }
  ASSERT_TRUE(test::eventually([&] { return completions.load() == total; }, 20s))
      << completions.load();
  EXPECT_FALSE(duplicate.load()) << "a request completed twice";
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(connection_errors.load(), 0) << "the restart should have cut some requests";
  EXPECT_EQ(other.load(), 0);

  // Later commands succeed on the reconnected connection without restarting the broker.
  ASSERT_TRUE(test::eventually([&] { return b.ready(); }, 10s));
  auto r = exec(b, {"SET", "after", "restart"});
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_GE(b.stats().reconnects, 1u);
}

TEST_F(BrokerTest, CommandsFailFastWhileRedisIsDown) {
  broker b(options(redis_.tcp_endpoint()));
  b.start();
  ASSERT_FALSE(exec(b, {"PING"}).ec);
  redis_.stop();
  ASSERT_TRUE(test::eventually([&] { return !b.ready(); }, 5s));
  auto started = std::chrono::steady_clock::now();
  auto r = exec(b, {"PING"});
  EXPECT_TRUE(r.ec == make_error_code(errc::not_connected) ||
              r.ec == make_error_code(errc::connection_lost) ||
              r.ec == make_error_code(errc::timeout))
      << r.ec.message();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2500ms);
  redis_.start();
  ASSERT_TRUE(test::eventually([&] { return b.ready(); }, 10s));
  EXPECT_FALSE(exec(b, {"PING"}).ec);
}

TEST_F(BrokerTest, SubscriberReceivesAgainAfterRestart) {
  broker b(options(redis_.tcp_endpoint()));
  b.start();
  std::mutex m;
  std::vector<std::string> messages;
  std::atomic<int> subscribed{0};
  b.subscribe(
      "property:p1:conversations", io_.executor(),
      [&](const std::string& channel, std::shared_ptr<const std::string> payload) {
        std::lock_guard lock(m);
        messages.push_back(channel + "=" + *payload);
      },
      [&](const std::string&) { subscribed++; });
  ASSERT_TRUE(test::eventually([&] { return subscribed.load() == 1; }));
  EXPECT_EQ(exec(b, {"PUBLISH", "property:p1:conversations", "one"}).value.integer(), 1);
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(m);
    return messages.size() == 1;
  }));

  redis_.restart();
  // The broker re-subscribes on its own and says so, so callers can fill the gap.
  ASSERT_TRUE(test::eventually([&] { return subscribed.load() == 2; }, 15s));
  ASSERT_TRUE(test::eventually([&] { return b.ready(); }, 10s));
  EXPECT_EQ(exec(b, {"PUBLISH", "property:p1:conversations", "two"}).value.integer(), 1);
  ASSERT_TRUE(test::eventually([&] {
    std::lock_guard lock(m);
    return messages.size() == 2;
  }));
  std::lock_guard lock(m);
  EXPECT_EQ(messages[0], "property:p1:conversations=one");
  EXPECT_EQ(messages[1], "property:p1:conversations=two");
}

TEST_F(BrokerTest, OneSubscriberConnectionSharedPayloadAndUnsubscribe) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  std::atomic<int> a_count{0}, b_count{0}, subscribed{0};
  std::mutex m;
  std::vector<const std::string*> payload_ptrs;
  auto record = [&](std::atomic<int>& counter) {
    return [&](const std::string&, std::shared_ptr<const std::string> p) {
      std::lock_guard lock(m);
      payload_ptrs.push_back(p.get());
      counter++;
    };
  };
  auto id_a = b.subscribe("chan", io_.executor(), record(a_count), [&](auto&) { subscribed++; });
  b.subscribe("chan", io_.executor(), record(b_count), [&](auto&) { subscribed++; });
  ASSERT_TRUE(test::eventually([&] { return subscribed.load() == 2; }));
  // Two local subscribers, one Redis subscription.
  EXPECT_EQ(redis_.cli("PUBSUB NUMSUB chan"), "chan\n1");
  exec(b, {"PUBLISH", "chan", "x"});
  ASSERT_TRUE(test::eventually([&] { return a_count == 1 && b_count == 1; }));
  {
    std::lock_guard lock(m);
    EXPECT_EQ(payload_ptrs[0], payload_ptrs[1]) << "payload should be shared, not copied";
  }
  b.unsubscribe(id_a);
  exec(b, {"PUBLISH", "chan", "y"});
  ASSERT_TRUE(test::eventually([&] { return b_count == 2; }));
  EXPECT_EQ(a_count.load(), 1);
}

TEST_F(BrokerTest, UnsubscribeAndResubscribeImmediately) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  std::atomic<int> got{0}, subscribed{0};
  auto on_msg = [&](const std::string&, std::shared_ptr<const std::string>) { got++; };
  auto id = b.subscribe("flip", io_.executor(), on_msg, [&](auto&) { subscribed++; });
  ASSERT_TRUE(test::eventually([&] { return subscribed.load() == 1; }));
  // The last local subscriber leaves and a new one arrives before Redis answers UNSUBSCRIBE.
  b.unsubscribe(id);
  b.subscribe("flip", io_.executor(), on_msg, [&](auto&) { subscribed++; });
  ASSERT_TRUE(test::eventually([&] { return subscribed.load() == 2; }));
  ASSERT_TRUE(test::eventually([&] { return redis_.cli("PUBSUB NUMSUB flip") == "flip\n1"; }));
  exec(b, {"PUBLISH", "flip", "m"});
  ASSERT_TRUE(test::eventually([&] { return got.load() == 1; }));
}

TEST_F(BrokerTest, ScriptFlushThenEvalshaStillSucceeds) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  auto s = script::make("incr_by", "return redis.call('INCRBY', KEYS[1], ARGV[1])");
  EXPECT_EQ(s.sha1.size(), 40u);
  auto r = eval(b, s, {"scripted"}, {"5"});
  ASSERT_FALSE(r.ec) << r.value.to_string();
  EXPECT_EQ(r.value.integer(), 5);
  EXPECT_EQ(redis_.cli("SCRIPT EXISTS " + s.sha1), "1");
  redis_.cli("SCRIPT FLUSH");
  EXPECT_EQ(redis_.cli("SCRIPT EXISTS " + s.sha1), "0");
  r = eval(b, s, {"scripted"}, {"2"});
  ASSERT_FALSE(r.ec) << r.value.to_string();
  EXPECT_EQ(r.value.integer(), 7);
  // A script error is a Redis error, not retried.
  auto bad = script::make("bad", "return redis.call('NOPE')");
  r = eval(b, bad, {}, {});
  EXPECT_EQ(r.ec, make_error_code(errc::redis_error));
}

TEST_F(BrokerTest, FrozenRedisMakesCommandsTimeOutThenRecovers) {
  auto o = options(redis_.unix_endpoint());
  o.command_timeout = 300ms;
  broker b(o);
  b.start();
  ASSERT_FALSE(exec(b, {"PING"}).ec);
  redis_.freeze();
  auto started = std::chrono::steady_clock::now();
  auto r = exec(b, {"SET", "during", "freeze"});
  auto took = std::chrono::steady_clock::now() - started;
  redis_.thaw();
  EXPECT_EQ(r.ec, make_error_code(errc::timeout));
  EXPECT_LT(took, 3s);
  EXPECT_GE(b.stats().timeouts, 1u);
  // After SIGCONT the late reply is absorbed and the connection goes on in order.
  ASSERT_TRUE(test::eventually([&] { return !exec(b, {"PING"}).ec; }, 5s));
  EXPECT_EQ(exec(b, {"INCR", "afterwards"}).value.integer(), 1);
}

TEST_F(BrokerTest, BlockingCommandsUseTheirOwnConnections) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  std::promise<result> popped;
  b.post_blocking({"BLMOVE", "inbound", "processing", "RIGHT", "LEFT", "5"}, 7s, io_.executor(),
                  [&](error_code ec, reply r) {
                    popped.set_value({ec, std::move(r)});
                  });
  // The shared connection is not held up by the blocked pop.
  for (int i = 0; i < 50; ++i) ASSERT_FALSE(exec(b, {"PING"}).ec);
  auto f = popped.get_future();
  EXPECT_EQ(f.wait_for(100ms), std::future_status::timeout);
  exec(b, {"LPUSH", "inbound", "guest-message"});
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.value.str(), "guest-message");
  EXPECT_EQ(redis_.cli("LRANGE processing 0 -1"), "guest-message");
}

TEST_F(BrokerTest, ManyConcurrentBlockingPopsAllServed) {
  broker b(options(redis_.unix_endpoint()));
  b.start();
  constexpr int n = 10;
  std::atomic<int> served{0};
  for (int i = 0; i < n; ++i) {
    b.post_blocking({"BRPOP", "jobs", "5"}, 7s, io_.executor(), [&](error_code ec, reply r) {
      if (!ec && r.is_array()) served++;
    });
  }
  std::this_thread::sleep_for(100ms);
  for (int i = 0; i < n; ++i) exec(b, {"LPUSH", "jobs", std::to_string(i)});
  EXPECT_TRUE(test::eventually([&] { return served.load() == n; }, 5s));
}

TEST_F(BrokerTest, AuthAndDatabaseSelection) {
  test::redis_server secured("s3cret-pass");
  auto ep = secured.tcp_endpoint();
  ep.db = 4;
  broker b(options(ep));
  b.start();
  ASSERT_FALSE(exec(b, {"SET", "in-db-4", "yes"}).ec);
  EXPECT_EQ(secured.cli("-n 4 GET in-db-4"), "yes");
  EXPECT_EQ(secured.cli("-n 0 EXISTS in-db-4"), "0");
}

TEST_F(BrokerTest, WrongPasswordNeverBecomesReady) {
  test::redis_server secured("right-pass");
  auto ep = secured.tcp_endpoint();
  ep.password = "wrong-pass";
  broker b(options(ep));
  b.start();
  auto r = exec(b, {"PING"});
  EXPECT_TRUE(r.ec) << "a command must not succeed with a wrong password";
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(b.ready());
  EXPECT_GE(b.stats().connection_failures, 1u);
}

TEST_F(BrokerTest, StopFailsPendingWithShuttingDownAndRefusesLaterPosts) {
  auto b = std::make_unique<broker>(options(redis_.unix_endpoint()));
  b->start();
  ASSERT_FALSE(exec(*b, {"PING"}).ec);
  std::promise<result> blocked;
  b->post_blocking({"BLPOP", "never", "10"}, 12s, io_.executor(), [&](error_code ec, reply r) {
    blocked.set_value({ec, std::move(r)});
  });
  std::this_thread::sleep_for(100ms);
  b->stop();
  auto f = blocked.get_future();
  ASSERT_EQ(f.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(f.get().ec, make_error_code(errc::shutting_down));
  auto r = exec(*b, {"PING"});
  EXPECT_EQ(r.ec, make_error_code(errc::shutting_down));
  EXPECT_EQ(b->state(), connection_state::stopped);
}

TEST_F(BrokerTest, CommandsPostedBeforeStartWaitForTheConnection) {
  broker b(options(redis_.unix_endpoint()));
  std::promise<result> p;
  b.post({"PING"}, io_.executor(), [&](error_code ec, reply r) {
    p.set_value({ec, std::move(r)});
  });
  b.start();
  auto r = p.get_future().get();
  EXPECT_FALSE(r.ec) << r.ec.message();
  EXPECT_EQ(r.value.str(), "PONG");
}

}  // namespace
}  // namespace bellhop::broker
