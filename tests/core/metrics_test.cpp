#include "bellhop/core/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>
#include <vector>

namespace bellhop::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(metrics_registry, renders_counter_and_gauge_families) {
  metrics_registry reg;
  auto& requests =
      reg.add_counter("bellhop_test_requests_total", "Requests seen.", {"route", "status"});
  requests.labels({"/b", "200"}).inc(3);
  requests.labels({"/a", "404"}).inc();
  reg.add_gauge("bellhop_test_up", "1 when up.").labels({}).set(1);
  reg.add_gauge("bellhop_test_ratio", "A ratio.").labels({}).set(0.25);

  EXPECT_EQ(reg.render(),
            "# HELP bellhop_test_requests_total Requests seen.\n"
            "# TYPE bellhop_test_requests_total counter\n"
            "bellhop_test_requests_total{route=\"/a\",status=\"404\"} 1\n"
            "bellhop_test_requests_total{route=\"/b\",status=\"200\"} 3\n"
            "# HELP bellhop_test_up 1 when up.\n"
            "# TYPE bellhop_test_up gauge\n"
            "bellhop_test_up 1\n"
            "# HELP bellhop_test_ratio A ratio.\n"
            "# TYPE bellhop_test_ratio gauge\n"
            "bellhop_test_ratio 0.25\n");
}

TEST(metrics_registry, unlabelled_metrics_are_exported_before_first_use) {
  metrics_registry reg;
  reg.add_counter("bellhop_test_events_total", "Events.");
  EXPECT_THAT(reg.render(), HasSubstr("\nbellhop_test_events_total 0\n"));
}

TEST(metrics_registry, gauge_inc_dec_and_special_values) {
  metrics_registry reg;
  auto& g = reg.add_gauge("bellhop_test_g", "G.", {"k"});
  g.labels({"a"}).inc(5);
  g.labels({"a"}).dec(2);
  g.labels({"inf"}).set(std::numeric_limits<double>::infinity());
  g.labels({"nan"}).set(std::numeric_limits<double>::quiet_NaN());
  const auto text = reg.render();
  EXPECT_THAT(text, HasSubstr("bellhop_test_g{k=\"a\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_g{k=\"inf\"} +Inf\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_g{k=\"nan\"} NaN\n"));
}

TEST(metrics_registry, escapes_label_values_and_help) {
  metrics_registry reg;
  reg.add_counter("bellhop_test_total", "Line one\nback\\slash \"quotes\" stay.", {"v"})
      .labels({"a\\b\"c\nd"})
      .inc();
  const auto text = reg.render();
  EXPECT_THAT(text,
              HasSubstr("# HELP bellhop_test_total Line one\\nback\\\\slash \"quotes\" stay.\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_total{v=\"a\\\\b\\\"c\\nd\"} 1\n"));
  // Exactly one line per sample: no raw newline leaked from a label value.
  EXPECT_THAT(text, Not(HasSubstr("c\nd")));
}

TEST(metrics_registry, histogram_buckets_are_cumulative_with_inf_sum_and_count) {
  metrics_registry reg;
  auto& h = reg.add_histogram("bellhop_test_seconds", "Latency.", {"route"}, {0.25, 1, 5});
  auto& cell = h.labels({"/x"});
  for (const double v : {0.1, 0.25, 0.5, 2.0, 100.0}) cell.observe(v);

  EXPECT_EQ(reg.render(),
            "# HELP bellhop_test_seconds Latency.\n"
            "# TYPE bellhop_test_seconds histogram\n"
            "bellhop_test_seconds_bucket{route=\"/x\",le=\"0.25\"} 2\n"
            "bellhop_test_seconds_bucket{route=\"/x\",le=\"1\"} 3\n"
            "bellhop_test_seconds_bucket{route=\"/x\",le=\"5\"} 4\n"
            "bellhop_test_seconds_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
            "bellhop_test_seconds_sum{route=\"/x\"} 102.85\n"
            "bellhop_test_seconds_count{route=\"/x\"} 5\n");
}

TEST(metrics_registry, unlabelled_histogram_uses_le_only) {
  metrics_registry reg;
  reg.add_histogram("bellhop_test_h", "H.", {}, {0.0005}).labels({}).observe(0.0001);
  const auto text = reg.render();
  EXPECT_THAT(text, HasSubstr("bellhop_test_h_bucket{le=\"0.0005\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_h_bucket{le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_h_sum 0.0001\n"));
  EXPECT_THAT(text, HasSubstr("bellhop_test_h_count 1\n"));
}

TEST(metrics_registry, latency_buckets_span_half_a_millisecond_to_ten_seconds) {
  const auto b = metrics_registry::latency_buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_DOUBLE_EQ(b.front(), 0.0005);
  EXPECT_DOUBLE_EQ(b.back(), 10);
}

TEST(metrics_registry, same_definition_returns_same_family_conflicts_throw) {
  metrics_registry reg;
  auto& a = reg.add_counter("bellhop_test_total", "T.", {"x"});
  EXPECT_EQ(&a, &reg.add_counter("bellhop_test_total", "T.", {"x"}));
  EXPECT_THROW(reg.add_counter("bellhop_test_total", "T.", {"y"}), std::invalid_argument);
  EXPECT_THROW(reg.add_gauge("bellhop_test_total", "T.", {"x"}), std::invalid_argument);
  EXPECT_THROW(reg.add_counter("bad-name", "T."), std::invalid_argument);
  EXPECT_THROW(reg.add_counter("bellhop_ok", "T.", {"bad label"}), std::invalid_argument);
  EXPECT_THROW(reg.add_histogram("bellhop_h", "H.", {"le"}, {1}), std::invalid_argument);
  EXPECT_THROW(reg.add_histogram("bellhop_h", "H.", {}, {2, 1}), std::invalid_argument);
  EXPECT_THROW(a.labels({"1", "2"}), std::invalid_argument);
}

TEST(metrics_registry, collectors_append_after_families) {
  metrics_registry reg;
  reg.add_counter("bellhop_test_total", "T.");
  reg.add_collector([](std::string& out) {
    append_metric_header(out, "bellhop_broker_up", "Redis reachable.", metric_type::gauge);
    append_metric_sample(out, "bellhop_broker_up", {{"conn", "cmd\"1"}}, 1);
  });
  const auto text = reg.render();
  EXPECT_THAT(text, HasSubstr("bellhop_test_total 0\n# HELP bellhop_broker_up Redis reachable.\n"
                              "# TYPE bellhop_broker_up gauge\n"
                              "bellhop_broker_up{conn=\"cmd\\\"1\"} 1\n"));
}

TEST(metrics_registry, concurrent_updates_from_four_threads_add_up) {
  metrics_registry reg;
  auto& fam = reg.add_counter("bellhop_test_total", "T.", {"k"});
  auto& hist = reg.add_histogram("bellhop_test_seconds", "S.", {"k"}, {0.5});
  auto& g = reg.add_gauge("bellhop_test_g", "G.");
  constexpr int threads = 4;
  constexpr int per_thread = 50000;
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      auto& cached = fam.labels({"cached"});
      for (int i = 0; i < per_thread; ++i) {
        cached.inc();
        // Lookup path, including concurrent first use of new label sets.
        fam.labels({i % 2 == 0 ? "even" : "odd"}).inc();
        fam.labels({"t" + std::to_string(t % 2)}).inc();
        hist.labels({"h"}).observe(i % 2 == 0 ? 0.25 : 1.0);
        g.labels({}).inc();
        g.labels({}).dec(0.5);
        if (i % 1000 == 0) (void)reg.render();  // scrapes racing with updates
      }
    });
  }
  for (auto& th : pool) th.join();

  EXPECT_EQ(fam.labels({"cached"}).value(), std::uint64_t{threads * per_thread});
  EXPECT_EQ(fam.labels({"even"}).value() + fam.labels({"odd"}).value(),
            std::uint64_t{threads * per_thread});
  EXPECT_EQ(fam.labels({"t0"}).value(), std::uint64_t{2 * per_thread});
  const auto snap = hist.labels({"h"}).read();
  EXPECT_EQ(snap.count, std::uint64_t{threads * per_thread});
  EXPECT_EQ(snap.cumulative.at(0), std::uint64_t{threads * per_thread / 2});
  EXPECT_DOUBLE_EQ(snap.sum, threads * per_thread / 2 * 1.25);
  EXPECT_DOUBLE_EQ(g.labels({}).value(), threads * per_thread * 0.5);
  EXPECT_THAT(reg.render(), HasSubstr("bellhop_test_total{k=\"cached\"} 200000\n"));
}

}  // namespace
}  // namespace bellhop::gateway
