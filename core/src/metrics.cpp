#include "bellhop/core/metrics.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace bellhop::gateway {
namespace {

bool valid_name(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

std::string_view type_name(metric_type type) {
  switch (type) {
    case metric_type::counter:
      return "counter";
    case metric_type::gauge:
      return "gauge";
    case metric_type::histogram:
      return "histogram";
  }
  return "untyped";
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `{a="x",b="y"` without the closing brace, so histograms can add `le`; nothing when empty.
void append_label_set(std::string& out, const std::vector<std::string>& names,
                      const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += i == 0 ? '{' : ',';
    out += names[i];
    out += "=\"";
    append_label_value(out, values[i]);
    out += '"';
  }
}

void append_help_text(std::string& out, std::string_view help) {
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void append_metric_value(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    // Shortest round-trip digits; plain notation where it stays short, so bucket bounds read
    // le="0.0005" like other exporters' rather than le="5e-04".
    char buf[64];
    const double magnitude = std::fabs(value);
    auto r = magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e15)
                 ? std::to_chars(buf, buf + sizeof buf, value, std::chars_format::fixed)
                 : std::to_chars(buf, buf + sizeof buf, value);
    if (r.ec != std::errc{}) r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
  }
}

void append_metric_header(std::string& out, std::string_view name, std::string_view help,
                          metric_type type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_help_text(out, help);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type_name(type);
  out += '\n';
}

void append_metric_sample(
    std::string& out, std::string_view name,
    std::initializer_list<std::pair<std::string_view, std::string_view>> labels, double value) {
  out += name;
  bool first = true;
  for (const auto& [label, label_value] : labels) {
    out += first ? '{' : ',';
    first = false;
    out += label;
    out += "=\"";
    append_label_value(out, label_value);
    out += '"';
  }
  if (!first) out += '}';
  out += ' ';
  append_metric_value(out, value);
  out += '\n';
}

histogram::histogram(std::span<const double> bounds)
    : bounds_(bounds), buckets_(new std::atomic<std::uint64_t>[bounds.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
  if (std::isnan(v)) return;
  // Upper bounds are inclusive (le): the first bound >= v.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

family_base::family_base(std::string name, std::string help, metric_type type,
                         std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

void family_base::check_arity(std::size_t values) const {
  if (values != label_names_.size()) {
    throw std::invalid_argument("metric " + name_ + " takes " +
                                std::to_string(label_names_.size()) + " label values, got " +
                                std::to_string(values));
  }
}

template <class Cell>
family<Cell>::family(std::string name, std::string help, metric_type type,
                     std::vector<std::string> label_names, std::vector<double> bounds)
    : family_base(std::move(name), std::move(help), type, std::move(label_names)),
      bounds_(std::move(bounds)) {
  // A metric without labels is exported (as 0) from the start.
  if (this->label_names().empty()) labels(std::span<const std::string_view>{});
}

template <class Cell>
Cell& family<Cell>::labels(std::span<const std::string_view> values) {
  check_arity(values.size());
  {
    std::shared_lock lock(mutex_);
    if (const auto it = cells_.find(values); it != cells_.end()) return *it->second;
  }
  std::unique_lock lock(mutex_);
  if (const auto it = cells_.find(values); it != cells_.end()) return *it->second;
  std::unique_ptr<Cell> cell;
  if constexpr (std::is_same_v<Cell, histogram>) {
    cell = std::make_unique<histogram>(bounds_);
  } else {
    cell = std::make_unique<Cell>();
  }
  Cell& ref = *cell;
  cells_.emplace(std::vector<std::string>(values.begin(), values.end()), std::move(cell));
  return ref;
}

template <class Cell>
void family<Cell>::render(std::string& out) const {
  append_metric_header(out, name(), help(), type());
  const auto& names = label_names();
  visit([&](const std::vector<std::string>& values, const Cell& cell) {
    if constexpr (std::is_same_v<Cell, histogram>) {
      const auto snap = cell.read();
      for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
        out += name();
        out += "_bucket";
        append_label_set(out, names, values);
        out += names.empty() ? "{le=\"" : ",le=\"";
        if (i < bounds_.size()) {
          append_metric_value(out, bounds_[i]);
        } else {
          out += "+Inf";
        }
        out += "\"} ";
        append_uint(out, snap.cumulative[i]);
        out += '\n';
      }
      const auto close = [&] {
        if (!names.empty()) out += '}';
      };
      out += name();
      out += "_sum";
      append_label_set(out, names, values);
      close();
      out += ' ';
      append_metric_value(out, snap.sum);
      out += '\n';
      out += name();
      out += "_count";
      append_label_set(out, names, values);
      close();
      out += ' ';
      append_uint(out, snap.count);
      out += '\n';
    } else {
      out += name();
      append_label_set(out, names, values);
      if (!names.empty()) out += '}';
      out += ' ';
      if constexpr (std::is_same_v<Cell, counter>) {
        append_uint(out, cell.value());
      } else {
        append_metric_value(out, cell.value());
      }
      out += '\n';
    }
  });
}

template class family<counter>;
template class family<gauge>;
template class family<histogram>;

metrics_registry::metrics_registry() = default;
metrics_registry::~metrics_registry() = default;

template <class Family>
Family& metrics_registry::add_family(std::string_view name, std::string_view help, metric_type type,
                                     std::vector<std::string> label_names,
                                     std::vector<double> bounds) {
  if (!valid_name(name, true)) {
    throw std::invalid_argument("invalid metric name '" + std::string(name) + "'");
  }
  for (const auto& label : label_names) {
    if (!valid_name(label, false) || label.starts_with("__") ||
        (type == metric_type::histogram && label == "le")) {
      throw std::invalid_argument("invalid label name '" + label + "' for metric " +
                                  std::string(name));
    }
  }
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
      throw std::invalid_argument("histogram " + std::string(name) +
                                  ": buckets must be finite and strictly increasing");
    }
  }
  std::lock_guard lock(mutex_);
  for (const auto& f : families_) {
    if (f->name() != name) continue;
    auto* existing = dynamic_cast<Family*>(f.get());
    if (existing == nullptr || existing->type() != type || existing->label_names() != label_names ||
        !std::equal(bounds.begin(), bounds.end(), existing->bounds().begin(),
                    existing->bounds().end())) {
      throw std::invalid_argument("metric " + std::string(name) +
                                  " is already registered with another definition");
    }
    return *existing;
  }
  auto family = std::make_unique<Family>(std::string(name), std::string(help), type,
                                         std::move(label_names), std::move(bounds));
  Family& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

counter_family& metrics_registry::add_counter(std::string_view name, std::string_view help,
                                              std::vector<std::string> label_names) {
  return add_family<counter_family>(name, help, metric_type::counter, std::move(label_names), {});
}

gauge_family& metrics_registry::add_gauge(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
  return add_family<gauge_family>(name, help, metric_type::gauge, std::move(label_names), {});
}

histogram_family& metrics_registry::add_histogram(std::string_view name, std::string_view help,
                                                  std::vector<std::string> label_names,
                                                  std::vector<double> buckets) {
  return add_family<histogram_family>(name, help, metric_type::histogram, std::move(label_names),
                                      std::move(buckets));
}

void metrics_registry::add_collector(collector c) {
  std::lock_guard lock(mutex_);
  collectors_.push_back(std::make_shared<const collector>(std::move(c)));
}

std::string metrics_registry::render() const {
  std::string out;
  std::vector<std::shared_ptr<const collector>> collectors;
  {
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) f->render(out);
    collectors = collectors_;
  }
  // Outside the lock: a collector may itself read metrics or register families.
  for (const auto& c : collectors) (*c)(out);
  return out;
}

std::vector<double> metrics_registry::latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace bellhop::gateway
