// A Redis at its maxmemory (noeviction) refusing writes: the broker reports the error reply as
// it is, recognises it as "full" (is_out_of_memory) and counts it; reads and frees still work.
#include <gtest/gtest.h>

#include <future>

#include "bellhop/broker/broker.hpp"
#include "support/io_thread.hpp"
#include "support/redis_server.hpp"

namespace bellhop::broker {
namespace {

using boost::system::error_code;

struct result {
  error_code ec;
  reply value;
};

class BrokerOomTest : public ::testing::Test {
 protected:
  result exec(broker& b, command cmd) {
    std::promise<result> p;
    auto f = p.get_future();
    b.post(std::move(cmd), io_.executor(), [&p](error_code ec, reply r) {
      p.set_value({ec, std::move(r)});
    });
    return f.get();
  }

  test::redis_server redis_;
  test::io_thread io_;
};

TEST_F(BrokerOomTest, WritesRefusedAtMaxmemoryAreRecognisedAndCounted) {
  broker b(test::fast_broker_options(redis_.tcp_endpoint()));
  b.start();
  ASSERT_FALSE(exec(b, {"RPUSH", "queue", "kept-1", "kept-2"}).ec);
  EXPECT_EQ(b.stats().out_of_memory, 0u);
  ASSERT_EQ(redis_.cli("CONFIG SET maxmemory-policy noeviction"), "OK");
  ASSERT_EQ(redis_.cli("CONFIG SET maxmemory 1"), "OK");  // below what it uses: full

  auto refused = exec(b, {"LPUSH", "queue", "new"});
  EXPECT_EQ(refused.ec, errc::redis_error);
  ASSERT_TRUE(refused.value.is_error());
  EXPECT_TRUE(is_out_of_memory(refused.value.str())) << refused.value.str();
  // A script's write too (the first write of a script that started while full).
  script s = script::make("push", "return redis.call('LPUSH', KEYS[1], ARGV[1])");
  std::promise<result> p;
  b.eval(s, {"queue"}, {"new"}, io_.executor(), [&p](error_code ec, reply r) {
    p.set_value({ec, std::move(r)});
  });
  auto scripted = p.get_future().get();
  ASSERT_TRUE(scripted.value.is_error());
  EXPECT_TRUE(is_out_of_memory(scripted.value.str())) << scripted.value.str();
  EXPECT_EQ(b.stats().out_of_memory, 2u);
  b.note_out_of_memory();  // a refusal a script caught and reported
  EXPECT_EQ(b.stats().out_of_memory, 3u);

  // Other errors are not "full"; what was stored is all there; taking frees.
  auto wrong = exec(b, {"LREM", "queue", "not-a-number", "v"});
  ASSERT_TRUE(wrong.value.is_error());
  EXPECT_FALSE(is_out_of_memory(wrong.value.str())) << wrong.value.str();
  auto all = exec(b, {"LRANGE", "queue", "0", "-1"});
  ASSERT_TRUE(all.value.is_array());
  EXPECT_EQ(all.value.elements().size(), 2u);
  EXPECT_EQ(exec(b, {"LREM", "queue", "1", "kept-1"}).value.integer(), 1);
  EXPECT_EQ(b.stats().out_of_memory, 3u);
  b.stop();
}

}  // namespace
}  // namespace bellhop::broker
