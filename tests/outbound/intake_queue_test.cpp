// intake_queue: the order the intake files the elements it took in (docs/outbound.md,
// "Intake"), and the probe that reads each element's place.
#include "bellhop/outbound/intake_queue.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bellhop::gateway {
namespace {

constexpr std::size_t max_bytes = 1 << 20;

std::string message(const std::string& text, const std::string& priority,
                    const std::string& extra = "") {
  return R"({"property_id":"p","to":"+49151","text":")" + text + R"(","priority":)" + priority +
         extra + "}";
}

// The texts (or the raw elements that have none) in the order next() gives them, n at a time.
std::vector<std::string> order(intake_queue& q, std::size_t n) {
  std::vector<std::string> out;
  while (!q.empty()) {
    auto batch = q.next(n);
    EXPECT_FALSE(batch.empty());
    EXPECT_LE(batch.size(), n);
    for (auto& e : batch) out.push_back(std::to_string(e.seq));
  }
  return out;
}

TEST(IntakeQueueProbe, ReadsThePriorityAndTheHandoffAsTheFullParseDoes) {
  auto probe = [](const std::string& raw) {
    const auto r = intake_queue::probe(raw, max_bytes);
    return std::pair(r.priority, r.barrier);
  };
  EXPECT_EQ(probe(message("a", "3")), std::pair(3, false));
  EXPECT_EQ(probe(R"({"to":"x","text":"no priority"})"), std::pair(5, false));
  EXPECT_EQ(probe(message("a", "null")), std::pair(5, false));
  EXPECT_EQ(probe(message("a", "10")), std::pair(10, false));
  // Out of range, not an integer: unreadable (dead-lettered by the full parse).
  for (const char* bad : {"0", "11", "-1", "3.0", "\"3\"", "[3]", "{}", "true", "4294967299"})
    EXPECT_EQ(probe(message("a", bad)).first, 0) << bad;
  // The first of a member given twice, as RapidJSON's FindMember; nested ones do not count.
  EXPECT_EQ(probe(R"({"priority":2,"priority":9})"), std::pair(2, false));
  EXPECT_EQ(probe(R"({"extras":{"priority":1},"priority":8})"), std::pair(8, false));
  EXPECT_EQ(probe(R"({"handoff":{"reason":"x"},"text":"t"})"), std::pair(5, true));
  EXPECT_EQ(probe(R"({"handoff":null,"priority":1})"), std::pair(1, false));
  EXPECT_EQ(probe(R"({"x":{"handoff":{"reason":"x"}}})"), std::pair(5, false));
  // Not an object, not JSON, too deep, too large.
  for (const std::string& bad :
       std::vector<std::string>{"[1,2]", "\"text\"", "not json", "", "{\"priority\":3",
                                std::string(40, '[') + std::string(40, ']')})
    EXPECT_EQ(probe(bad).first, 0) << bad;
  EXPECT_EQ(intake_queue::probe(message(std::string(100, 'x'), "3"), 50).priority, 0);
}

TEST(IntakeQueue, FilesByPriorityThenInTheOrderTaken) {
  intake_queue q(max_bytes);
  const std::vector<std::string> priorities = {"10", "10", "3", "10", "5", "3", "1", "10"};
  for (std::size_t i = 0; i < priorities.size(); ++i)
    q.push({i + 1, message("m", priorities[i]), 0});
  EXPECT_EQ(q.size(), priorities.size());
  EXPECT_GT(q.bytes(), 0u);
  EXPECT_EQ(order(q, 3), (std::vector<std::string>{"7", "3", "6", "5", "1", "2", "4", "8"}));
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(IntakeQueue, ALaterReplyJoinsAheadOfWhatIsLeftOfACampaign) {
  intake_queue q(max_bytes);
  for (std::uint64_t i = 1; i <= 1000; ++i) q.push({i, message("bulk", "10"), 0});
  auto first = q.next(100);
  EXPECT_EQ(first.front().seq, 1u);
  EXPECT_EQ(first.back().seq, 100u);
  q.push({1001, message("reply", "3"), 0});
  // The reply in a batch of its own (a call of one element), then the rest of the campaign.
  auto second = q.next(100);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second.front().seq, 1001u);
  EXPECT_EQ(q.next(100).front().seq, 101u);
}

TEST(IntakeQueue, ABatchHoldsOnePriorityAndABarrierGoesAlone) {
  intake_queue q(max_bytes);
  q.push({1, message("a", "10"), 0});
  q.push({2, message("b", "5"), 0});
  q.push({3, message("c", "5"), 0});
  q.push({4, R"({"to":"x","handoff":{"reason":"guest asked"}})", 0});
  q.push({5, message("d", "1"), 0});
  std::vector<std::vector<std::uint64_t>> batches;
  while (!q.empty()) {
    batches.emplace_back();
    for (const auto& e : q.next(100)) batches.back().push_back(e.seq);
  }
  EXPECT_EQ(batches, (std::vector<std::vector<std::uint64_t>>{{2, 3}, {1}, {4}, {5}}));
}

TEST(IntakeQueue, UnreadableElementsGoFirst) {
  intake_queue q(max_bytes);
  q.push({1, message("a", "1"), 0});
  q.push({2, "not json", 0});
  q.push({3, message("b", "99"), 0});
  EXPECT_EQ(order(q, 10), (std::vector<std::string>{"2", "3", "1"}));
}

TEST(IntakeQueue, AHandoffKeepsItsPlaceInTheListsOrder) {
  intake_queue q(max_bytes);
  q.push({1, message("a", "10"), 0});
  q.push({2, message("b", "5"), 0});
  q.push({3, R"({"to":"x","handoff":{"reason":"guest asked"},"priority":9})", 0});
  q.push({4, message("c", "1"), 0});
  q.push({5, message("d", "10"), 0});
  q.push({6, R"({"to":"x","handoff":{"reason":"again"}})", 0});
  q.push({7, message("e", "2"), 0});
  // Before the first handoff by priority, then it, then the next ones by priority, …
  EXPECT_EQ(order(q, 2), (std::vector<std::string>{"2", "1", "3", "4", "5", "6", "7"}));
  q.push({8, R"({"handoff":{"reason":"x"}})", 0});
  q.push({9, message("f", "1"), 0});
  EXPECT_EQ(order(q, 100), (std::vector<std::string>{"8", "9"}));
}

}  // namespace
}  // namespace bellhop::gateway
