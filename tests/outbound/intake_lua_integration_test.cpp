// The intake's scripts on a real redis-server (docs/outbound.md, "Intake", "Crash safety"):
// outbound_take.lua takes a short queue into the intake hash and a longer one whole, as an
// intake list; outbound_accept.lua takes each element off the hash or marks it filed in its
// list's bitmap, and drops a list all filed; outbound_recover.lua hands a dead process's hash
// and lists back in take order, a budget's worth per call.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bellhop/outbound/lua.hpp"
#include "support/redis_client.hpp"
#include "support/redis_server.hpp"

namespace bellhop::gateway {
namespace {

using broker::reply;

const std::string queue = "outbound:whatsapp";

std::vector<std::string> strings(const reply& r) {
  std::vector<std::string> out;
  for (const auto& e : r.elements()) out.push_back(e.is_string() ? e.str() : "<not a string>");
  return out;
}

class IntakeLua : public ::testing::Test {
 protected:
  // A take of at most `room` elements into the hash, of a queue of up to `longest` or over
  // `whole_at_most`; one in between whole.
  reply take(const std::string& intake, int room, long long first, int longest,
             int whole_at_most = 100) {
    return client_.try_run({"EVAL", std::string(lua::outbound_take), "2", queue, intake,
                            std::to_string(room), std::to_string(first), std::to_string(longest),
                            std::to_string(whole_at_most)});
  }
  // An accept call of 'dead' elements only (no message keys): {-3, ''} for each one still in
  // the intake (it goes to the dead list), {-1, ''} for one that left it.
  std::vector<long long> accept_dead(const std::string& intake,
                                     const std::vector<std::string>& refs) {
    broker::command cmd = {"EVAL",  std::string(lua::outbound_accept),
                           "6",     intake,
                           "ready", "arrivals",
                           "stats", "delayed",
                           "dead"};
    for (const char* a : {"86400", "604800", "message:", "100", "86400", "20", "whatsapp",
                          "2026-12-06T12:00:00.000Z", "1796558400000"})
      cmd.emplace_back(a);
    for (const auto& ref : refs)
      cmd.insert(cmd.end(), {"dead", ref, "element " + ref, R"({"reason":"invalid: test"})"});
    const auto r = client_.run(std::move(cmd));
    EXPECT_TRUE(r.is_array()) << r.to_string();
    std::vector<long long> codes;
    for (std::size_t i = 0; i < r.elements().size(); i += 2)
      codes.push_back(r.elements()[i].integer());
    return codes;
  }
  long long recover(const std::string& gateway) {
    client_.run({"ZADD", "outbound:gateways", "1", gateway});
    const auto r = client_.run({"EVAL", std::string(lua::outbound_recover), "1",
                                "outbound:gateways", "1000", "", "whatsapp"});
    EXPECT_TRUE(r.is_integer()) << r.to_string();
    return r.integer();
  }
  // The queue from its oldest end (the order the intake takes it in).
  std::vector<std::string> queue_oldest_first() {
    auto all = strings(client_.run({"LRANGE", queue, "0", "-1"}));
    return {all.rbegin(), all.rend()};
  }
  // An intake list as the take leaves it: `elements` oldest first, numbered from `number`.
  void make_list(const std::string& intake, long long number,
                 const std::vector<std::string>& elements) {
    const auto list = intake + ":" + std::to_string(number);
    for (std::size_t i = 0; i < elements.size(); i += 5000) {
      broker::command cmd = {"LPUSH", list};
      cmd.insert(cmd.end(), elements.begin() + i,
                 elements.begin() + std::min(elements.size(), i + 5000));
      client_.run(std::move(cmd));
    }
    client_.run(
        {"HSET", intake + ":lists", std::to_string(number), std::to_string(elements.size())});
  }

  test::redis_server redis_;
  test::redis_client client_{redis_.unix_endpoint()};
};

TEST_F(IntakeLua, AShortQueueGoesIntoTheHashOldestFirstUpToTheRoom) {
  client_.run({"LPUSH", queue, "a", "b", "c"});
  EXPECT_EQ(strings(take("intake", 2, 10, 4)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(client_.run({"HGET", "intake", "10"}).str(), "a");
  EXPECT_EQ(client_.run({"HGET", "intake", "11"}).str(), "b");
  EXPECT_EQ(strings(client_.run({"LRANGE", queue, "0", "-1"})), (std::vector<std::string>{"c"}));
  EXPECT_EQ(strings(take("intake", 2, 12, 4)), (std::vector<std::string>{"c"}));
  EXPECT_EQ(client_.run({"EXISTS", queue, "intake:lists"}).integer(), 0);
}

TEST_F(IntakeLua, ALongerQueueIsTakenWholeAsAnIntakeList) {
  client_.run({"LPUSH", queue, "a", "b", "c", "d", "e"});
  const auto r = take("intake", 2, 7, 4);
  ASSERT_TRUE(r.is_integer()) << r.to_string();
  EXPECT_EQ(r.integer(), 5);
  EXPECT_EQ(client_.run({"EXISTS", queue}).integer(), 0);
  EXPECT_EQ(strings(client_.run({"LRANGE", "intake:7", "0", "-1"})),
            (std::vector<std::string>{"e", "d", "c", "b", "a"}));
  EXPECT_EQ(strings(client_.run({"HGETALL", "intake:lists"})),
            (std::vector<std::string>{"7", "5"}));
  EXPECT_EQ(client_.run({"HLEN", "intake"}).integer(), 0);
  // What engines push next starts a new queue, taken as any other.
  client_.run({"LPUSH", queue, "f"});
  EXPECT_EQ(strings(take("intake", 2, 12, 4)), (std::vector<std::string>{"f"}));
}

// Longer than a list taken whole may be (its filed elements stay in Redis until all are):
// taken into the hash, a room's worth at a time, as a short one.
TEST_F(IntakeLua, AQueueLongerThanAListMayBeGoesIntoTheHashARoomAtATime) {
  client_.run({"LPUSH", queue, "a", "b", "c", "d", "e", "f"});
  EXPECT_EQ(strings(take("intake", 2, 1, 2, 5)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(client_.run({"LLEN", queue}).integer(), 4);
  EXPECT_EQ(client_.run({"EXISTS", "intake:1", "intake:lists"}).integer(), 0);
  // Four left: between the two bounds, taken whole.
  EXPECT_EQ(take("intake", 2, 3, 2, 5).integer(), 4);
}

TEST_F(IntakeLua, AQueueOfAnotherTypeIsAnErrorAndStaysAsItWas) {
  client_.run({"SET", queue, "not a list"});
  EXPECT_TRUE(take("intake", 2, 1, 4).is_error());
  EXPECT_EQ(client_.run({"GET", queue}).str(), "not a list");
  EXPECT_EQ(client_.run({"EXISTS", "intake:1"}).integer(), 0);
}

// The record of the lists made a list by an engine's LPUSH (its ACL is outbound:*): the take
// fails before it moves anything.
TEST_F(IntakeLua, ATakeWhoseListRecordIsOfAnotherTypeMovesNothing) {
  client_.run({"LPUSH", queue, "a", "b", "c"});
  client_.run({"LPUSH", "intake:lists", "pushed by an engine"});
  EXPECT_TRUE(take("intake", 2, 1, 2).is_error());
  EXPECT_EQ(client_.run({"LLEN", queue}).integer(), 3);
  EXPECT_EQ(client_.run({"EXISTS", "intake:1"}).integer(), 0);
}

TEST_F(IntakeLua, AcceptMarksListElementsAndDropsTheListOnceAllAreFiled) {
  make_list("intake", 7, {"a", "b", "c"});
  client_.run({"HSET", "intake", "5", "h"});
  // An engine's LPUSH onto the list (its ACL is outbound:*): beyond the length taken, no
  // element of it.
  client_.run({"LPUSH", "intake:7", "pushed onto the list"});
  // Index 1 was handed back by a process that took this one for dead: its bit is set.
  client_.run({"SETBIT", "intake:7:filed", "1", "1"});
  EXPECT_EQ(accept_dead("intake", {"7+0", "5"}), (std::vector<long long>{-3, -3}));
  EXPECT_EQ(client_.run({"GETBIT", "intake:7:filed", "0"}).integer(), 1);
  EXPECT_EQ(client_.run({"HLEN", "intake"}).integer(), 0);
  EXPECT_EQ(client_.run({"EXISTS", "intake:7"}).integer(), 1);
  // Filed twice, handed back, past the list's end: left the intake.
  EXPECT_EQ(accept_dead("intake", {"7+0", "7+1", "7+9", "5", "7+2"}),
            (std::vector<long long>{-1, -1, -1, -1, -3}));
  EXPECT_EQ(
      strings(client_.run({"LRANGE", "dead", "0", "-1"})),
      (std::vector<std::string>{R"({"reason":"invalid: test"})", R"({"reason":"invalid: test"})",
                                R"({"reason":"invalid: test"})"}));
  EXPECT_EQ(client_.run({"EXISTS", "intake:7", "intake:7:filed", "intake:lists"}).integer(), 0);
}

// Hash and lists interleaved by number: the hash's 1 and 2, list 3 (numbers 3 to 7, the second
// filed), the hash's 8 and 9, list 10 (its first filed): handed back in that order, the filed
// ones not.
TEST_F(IntakeLua, ADeadProcesssHashAndListsGoBackInTakeOrder) {
  const std::string intake = "outbound:whatsapp:intake:gone-1-AAAA";
  client_.run({"HSET", intake, "9", "h9", "1", "h1", "8", "h8", "2", "h2"});
  make_list(intake, 3, {"l3", "l4", "l5", "l6", "l7"});
  client_.run({"SETBIT", intake + ":3:filed", "1", "1"});
  make_list(intake, 10, {"l10", "l11"});
  client_.run({"SETBIT", intake + ":10:filed", "0", "1"});
  client_.run({"LPUSH", intake + ":10", "pushed onto the list"});  // not handed back
  client_.run({"LPUSH", queue, "queued before"});
  EXPECT_EQ(recover("gone-1-AAAA"), 9);
  EXPECT_EQ(queue_oldest_first(), (std::vector<std::string>{"queued before", "h1", "h2", "l3", "l5",
                                                            "l6", "l7", "h8", "h9", "l11"}));
  EXPECT_EQ(client_.run({"KEYS", intake + "*"}).elements().size(), 0u);
  EXPECT_TRUE(client_.run({"ZSCORE", "outbound:gateways", "gone-1-AAAA"}).is_nil());
}

// A list longer than one call's budget (20,000): handed back over several calls, in order,
// each element once; the process is forgotten once all of it is back.
TEST_F(IntakeLua, ALongDeadIntakeListGoesBackOverSeveralCalls) {
  const std::string intake = "outbound:whatsapp:intake:gone-2-BBBB";
  constexpr int count = 45000;
  std::vector<std::string> elements, expected;
  for (int i = 0; i < count; ++i) {
    char text[16];
    std::snprintf(text, sizeof text, "n%06d", i);
    elements.emplace_back(text);
    if (i % 10 != 3) expected.emplace_back(text);
  }
  make_list(intake, 1, elements);
  for (int i = 3; i < count; i += 10)  // filed before the process died
    client_.run({"SETBIT", intake + ":1:filed", std::to_string(i), "1"});
  long long moved = 0;
  int calls = 0;
  do {
    moved += recover("gone-2-BBBB");
    ASSERT_LT(++calls, 10);
  } while (client_.run({"EXISTS", intake + ":lists"}).integer() == 1);
  EXPECT_TRUE(client_.run({"ZSCORE", "outbound:gateways", "gone-2-BBBB"}).is_nil());
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(moved, static_cast<long long>(expected.size()));
  EXPECT_EQ(queue_oldest_first(), expected);
  EXPECT_EQ(
      client_.run({"EXISTS", intake + ":1", intake + ":1:filed", intake + ":lists"}).integer(), 0);
}

// The budget (20,000 elements a call) holds across the hash and the lists: the hash's 1 to
// 5,000, list 5,001 (14,000 elements), the hash's 19,001 to 29,000. The first call hands back
// exactly 20,000 (the first 1,000 of the hash's second run), the second the rest; in take order.
TEST_F(IntakeLua, ABudgetSpentInTheHashAfterAListLeavesTheRestToTheNextCall) {
  const std::string intake = "outbound:whatsapp:intake:gone-3-CCCC";
  std::vector<std::string> expected, list_elements;
  auto hash_run = [&](int from, int to) {
    broker::command cmd = {"HSET", intake};
    for (int n = from; n <= to; ++n) {
      cmd.insert(cmd.end(), {std::to_string(n), "h" + std::to_string(n)});
      expected.push_back("h" + std::to_string(n));
    }
    client_.run(std::move(cmd));
  };
  hash_run(1, 5000);
  for (int n = 5001; n <= 19000; ++n) list_elements.push_back("l" + std::to_string(n));
  expected.insert(expected.end(), list_elements.begin(), list_elements.end());
  make_list(intake, 5001, list_elements);
  hash_run(19001, 29000);
  EXPECT_EQ(recover("gone-3-CCCC"), 20000);
  EXPECT_EQ(client_.run({"HLEN", intake}).integer(), 9000);
  EXPECT_FALSE(client_.run({"ZSCORE", "outbound:gateways", "gone-3-CCCC"}).is_nil());
  EXPECT_EQ(recover("gone-3-CCCC"), 9000);
  EXPECT_EQ(queue_oldest_first(), expected);
  EXPECT_EQ(client_.run({"KEYS", intake + "*"}).elements().size(), 0u);
  EXPECT_TRUE(client_.run({"ZSCORE", "outbound:gateways", "gone-3-CCCC"}).is_nil());
}

}  // namespace
}  // namespace bellhop::gateway
