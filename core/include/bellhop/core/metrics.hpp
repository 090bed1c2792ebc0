#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bellhop::gateway {

enum class metric_type { counter, gauge, histogram };

// Cells: one time series each. Updates are single relaxed atomic operations, so a caller that
// keeps the reference returned by a family's labels() updates without any lock.
class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void inc(double d = 1) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  void dec(double d = 1) noexcept { value_.fetch_sub(d, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class histogram {
 public:
  // `bounds`: strictly increasing finite upper bounds, owned by the family (outlives the cell).
  explicit histogram(std::span<const double> bounds);

  void observe(double v) noexcept;  // NaN is ignored

  struct snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  // Not atomic across buckets; a concurrent observe() may show in some buckets only, but
  // the buckets stay cumulative and _count always equals the +Inf bucket.
  snapshot read() const;
  std::span<const double> bounds() const noexcept { return bounds_; }

 private:
  std::span<const double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, last one is +Inf
  std::atomic<double> sum_{0};
};

class family_base {
 public:
  family_base(std::string name, std::string help, metric_type type,
              std::vector<std::string> label_names);
  virtual ~family_base() = default;
  family_base(const family_base&) = delete;
  family_base& operator=(const family_base&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  metric_type type() const noexcept { return type_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }

  virtual void render(std::string& out) const = 0;

 protected:
  // Throws std::invalid_argument unless there is one value per label name (a programming error).
  void check_arity(std::size_t values) const;

 private:
  std::string name_;
  std::string help_;
  metric_type type_;
  std::vector<std::string> label_names_;
};

// A metric with labels: one cell per distinct list of label values. Looking a cell up takes a
// shared lock (exclusive only the first time a label set is seen); cells never move or die
// before the family, so callers may cache the reference and skip the lookup.
template <class Cell>
class family final : public family_base {
 public:
  family(std::string name, std::string help, metric_type type, std::vector<std::string> label_names,
         std::vector<double> bounds = {});

  Cell& labels(std::initializer_list<std::string_view> values) {
    return labels(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Cell& labels(std::span<const std::string_view> values);

  // Calls f(label values, cell) for every cell, in label order, under the family's lock.
  template <class F>
  void visit(F&& f) const {
    std::shared_lock lock(mutex_);
    for (const auto& [values, cell] : cells_) f(values, *cell);
  }

  std::span<const double> bounds() const noexcept { return bounds_; }
  void render(std::string& out) const override;

 private:
  struct values_less {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end());
    }
  };

  std::vector<double> bounds_;  // histograms only
  mutable std::shared_mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<Cell>, values_less> cells_;
};

using counter_family = family<counter>;
using gauge_family = family<gauge>;
using histogram_family = family<histogram>;

extern template class family<counter>;
extern template class family<gauge>;
extern template class family<histogram>;

// The process's metrics, rendered in Prometheus text exposition format 0.0.4. Names are passed
// in full (with the `bellhop_` prefix). add_* returns the existing family when one with the
// same name, type and label names exists, and throws std::invalid_argument for an invalid name
// or a conflicting definition (startup-time programming errors).
class metrics_registry {
 public:
  // Appends complete families (HELP, TYPE, samples) at scrape time; see append_metric_*.
  using collector = std::function<void(std::string& out)>;

  metrics_registry();
  ~metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;

  counter_family& add_counter(std::string_view name, std::string_view help,
                              std::vector<std::string> label_names = {});
  gauge_family& add_gauge(std::string_view name, std::string_view help,
                          std::vector<std::string> label_names = {});
  // `buckets`: strictly increasing finite upper bounds; +Inf is implied.
  histogram_family& add_histogram(std::string_view name, std::string_view help,
                                  std::vector<std::string> label_names,
                                  std::vector<double> buckets);

  // Runs on the scraping thread, outside the registry's lock; must be thread-safe and quick.
  void add_collector(collector c);

  // Families in registration order, then collector output.
  std::string render() const;

  // 0.0005 s … 10 s, for request latencies.
  static std::vector<double> latency_buckets();

 private:
  template <class Family>
  Family& add_family(std::string_view name, std::string_view help, metric_type type,
                     std::vector<std::string> label_names, std::vector<double> bounds);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<family_base>> families_;
  std::vector<std::shared_ptr<const collector>> collectors_;
};

// Exposition helpers for collectors (and the registry itself): correctly escaped text.
void append_metric_header(std::string& out, std::string_view name, std::string_view help,
                          metric_type type);
void append_metric_sample(
    std::string& out, std::string_view name,
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value);
// Label value escaping of the text format: backslash, double quote and line feed.
void append_label_value(std::string& out, std::string_view value);
// Shortest round-trip decimal; +Inf, -Inf, NaN as the format spells them.
void append_metric_value(std::string& out, double value);

}  // namespace bellhop::gateway
