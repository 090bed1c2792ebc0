#include "bellhop/dashboard/escalator.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "bellhop/contract/ids.hpp"
#include "bellhop/dashboard/lua.hpp"

namespace bellhop::gateway {

using boost::system::error_code;

constexpr auto warn_every = std::chrono::seconds(30);

struct escalator::impl : std::enable_shared_from_this<impl> {
  // One pass over the properties; lives as long as its commands are in flight.
  struct pass {
    std::size_t left;
    int escalated = 0;
    bool failed = false;
    std::string why;  // the first failure: "<property>: <reason>"
    std::function<void(int)> done;
  };

  impl(boost::asio::any_io_executor ex, const services& s, const contract::key_space& k,
       const dashboard_options& o, std::vector<property> p, metrics_registry& metrics)
      : executor(boost::asio::make_strand(ex)),
        timer(executor),
        svc(s),
        keys(k),
        options(o),
        escalations(metrics
                        .add_counter("bellhop_escalations_total",
                                     "Conversations escalated to their property's escalation "
                                     "contact by this process.")
                        .labels({})),
        errors(metrics
                   .add_counter("bellhop_escalation_errors_total",
                                "Escalation passes that failed because Redis did not answer "
                                "(retried every second).")
                   .labels({})) {
    for (auto& each : p)
      if (each.escalation && (!each.escalation->email.empty() || !each.escalation->sms.empty()))
        properties.push_back(std::move(each));
  }

  void schedule() {
    if (stopped) return;
    timer.expires_after(std::chrono::seconds(1));
    timer.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->stopped) return;
      self->tick(std::chrono::system_clock::now(), [self](int escalated) {
        if (escalated > 0) spdlog::info("escalation: {} conversations escalated", escalated);
        self->schedule();
      });
    });
  }

  void tick(std::chrono::system_clock::time_point now, std::function<void(int)> done) {
    if (properties.empty() || !svc.redis) return done(0);
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    auto p = std::make_shared<pass>(pass{properties.size(), 0, false, {}, std::move(done)});
    for (const auto& prop : properties) {
      const auto& e = *prop.escalation;
      std::vector<std::string> k = {keys.property_escalation(prop.id),
                                    keys.property_unread(prop.id),
                                    keys.property_seq(prop.id),
                                    keys.property_events(prop.id),
                                    keys.outbound("email"),
                                    keys.outbound("sms")};
      std::vector<std::string> args = {prop.id,
                                       std::to_string(now_ms - std::int64_t{e.after_s} * 1000),
                                       std::to_string(now_ms),
                                       contract::format_timestamp(now),
                                       std::to_string(options.history_max),
                                       keys.property_channel(prop.id),
                                       keys.conversation(""),
                                       e.email,
                                       e.sms,
                                       prop.name.empty() ? prop.id : prop.name,
                                       "100"};
      svc.redis->eval(script, std::move(k), std::move(args), executor,
                      [self = shared_from_this(), p, id = prop.id](error_code ec, broker::reply r) {
                        if (ec || !r.is_integer()) {
                          if (!p->failed) p->why = id + ": " + (ec ? ec.message() : r.to_string());
                          p->failed = true;
                        } else {
                          p->escalated += static_cast<int>(r.integer());
                        }
                        if (--p->left == 0) self->finish(*p);
                      });
    }
  }

  // Runs on the strand, once per pass.
  void finish(pass& p) {
    if (p.escalated > 0) escalations.inc(static_cast<std::uint64_t>(p.escalated));
    if (p.failed) {
      errors.inc();
      const auto now = std::chrono::steady_clock::now();
      if (!warned || now - last_warn >= warn_every) {
        warned = true;
        last_warn = now;
        spdlog::warn(
            "escalation of property {} failed; retried every second ({} failed passes so far, "
            "logged at most every {} s)",
            p.why, errors.value(), warn_every.count());
      }
    }
    p.done(p.failed ? -1 : p.escalated);
  }

  boost::asio::any_io_executor executor;
  boost::asio::steady_timer timer;
  const services& svc;
  const contract::key_space& keys;
  const dashboard_options options;
  std::vector<property> properties;
  const broker::script script = broker::script::make("escalate", std::string(lua::escalate));
  counter& escalations;
  counter& errors;
  std::atomic<bool> stopped{false};
  bool warned = false;  // on the strand
  std::chrono::steady_clock::time_point last_warn;
};

escalator::escalator(boost::asio::any_io_executor ex, const services& svc,
                     const contract::key_space& keys, const dashboard_options& options,
                     std::vector<property> properties, metrics_registry& metrics)
    : impl_(std::make_shared<impl>(ex, svc, keys, options, std::move(properties), metrics)) {}
escalator::~escalator() {
  stop();
}

void escalator::start() {
  if (!impl_->properties.empty()) impl_->schedule();
}

void escalator::stop() {
  if (impl_->stopped.exchange(true)) return;
  boost::asio::post(impl_->executor, [self = impl_] { self->timer.cancel(); });
}

void escalator::tick(std::chrono::system_clock::time_point now, std::function<void(int)> done) {
  impl_->tick(now, std::move(done));
}

}  // namespace bellhop::gateway
