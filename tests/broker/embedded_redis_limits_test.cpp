// The pure parts of the embedded Redis's guard rails: the default maxmemory from the machine's
// memory, the engine user's ACL rules, and how a full Redis is recognised.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "bellhop/broker/embedded_redis.hpp"
#include "bellhop/broker/error.hpp"

namespace bellhop::broker {
namespace {

constexpr std::uint64_t mib = 1024 * 1024;
constexpr std::uint64_t gib = 1024 * mib;

TEST(default_maxmemory, is_a_quarter_of_the_memory_between_256_mib_and_8_gib) {
  EXPECT_EQ(default_maxmemory_bytes(4 * gib), 1 * gib);
  EXPECT_EQ(default_maxmemory_bytes(16 * gib), 4 * gib);
  EXPECT_EQ(default_maxmemory_bytes(6 * gib + 4), 1536 * mib + 1);
  // Floor: a small VM still holds a burst.
  EXPECT_EQ(default_maxmemory_bytes(512 * mib), 256 * mib);
  EXPECT_EQ(default_maxmemory_bytes(1 * gib), 256 * mib);
  EXPECT_EQ(default_maxmemory_bytes(0), 256 * mib);  // unknown
  // Cap: a big host does not buffer days of backlog.
  EXPECT_EQ(default_maxmemory_bytes(32 * gib), 8 * gib);
  EXPECT_EQ(default_maxmemory_bytes(512 * gib), 8 * gib);
  EXPECT_EQ(default_maxmemory_bytes(~std::uint64_t{0}), 8 * gib);
}

TEST(default_maxmemory, machine_memory_is_known_here) {
  EXPECT_GT(machine_memory_bytes(), 64 * mib);
}

bool has(const std::vector<std::string>& rules, const std::string& rule) {
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

TEST(engine_acl, starts_from_nothing_and_grants_the_contract_only) {
  const auto rules = engine_acl_rules("");
  ASSERT_GE(rules.size(), 3u);
  EXPECT_EQ(rules[0], "resetkeys");
  EXPECT_EQ(rules[1], "resetchannels");
  EXPECT_EQ(rules[2], "-@all");
  EXPECT_TRUE(has(rules, "+lpush"));
  EXPECT_TRUE(has(rules, "%W~outbound:*"));
  EXPECT_TRUE(has(rules, "(+set +del %W~inbound:messages:heartbeat:*)"));
  EXPECT_TRUE(has(rules,
                  "(+blmove +brpoplpush +lmove ~inbound:messages "
                  "~inbound:messages:processing:*)"));
  for (const auto& rule : rules) {
    EXPECT_EQ(rule.find("@admin"), std::string::npos) << rule;
    EXPECT_EQ(rule.find("+@"), std::string::npos) << rule;  // no whole categories
    EXPECT_EQ(rule.find("eval"), std::string::npos) << rule;
    EXPECT_NE(rule, "~*") << rule;
    EXPECT_NE(rule, "allkeys") << rule;
  }
}

TEST(engine_acl, every_key_pattern_carries_the_prefix_with_glob_characters_escaped) {
  const auto rules = engine_acl_rules("h*[1]?\\:");
  const std::string escaped = "h\\*\\[1\\]\\?\\\\:";
  EXPECT_TRUE(has(rules, "%W~" + escaped + "outbound:*"));
  EXPECT_TRUE(has(rules, "(+sadd %W~" + escaped + "inbound:messages:consumers)"));
  for (const auto& rule : rules) {
    for (auto at = rule.find('~'); at != std::string::npos; at = rule.find('~', at + 1))
      EXPECT_EQ(rule.compare(at + 1, escaped.size(), escaped), 0) << rule;
  }
}

TEST(out_of_memory, recognises_redis_refusing_a_write_at_maxmemory) {
  EXPECT_TRUE(is_out_of_memory("OOM command not allowed when used memory > 'maxmemory'."));
  EXPECT_TRUE(
      is_out_of_memory("OOM command not allowed when used memory > 'maxmemory'. "
                       "script: d1f5d33e2e06a59e, on @user_script:1."));
  EXPECT_FALSE(is_out_of_memory("ERR wrong number of arguments"));
  EXPECT_FALSE(is_out_of_memory("WRONGTYPE Operation against a key holding the wrong kind"));
  EXPECT_FALSE(is_out_of_memory("NOPERM this user has no permissions"));
  EXPECT_FALSE(is_out_of_memory("OOMKILLER"));
  EXPECT_FALSE(is_out_of_memory(""));
}

}  // namespace
}  // namespace bellhop::broker
