#include "bellhop/dashboard/escalation.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <string>

#include "bellhop/contract/timestamp.hpp"
#include "bellhop/dashboard/lua.hpp"

namespace bellhop::gateway {

namespace asio = boost::asio;
using boost::system::error_code;
using sys_clock = std::chrono::system_clock;

namespace {
constexpr auto warn_every = std::chrono::seconds(30);
constexpr std::string_view per_call = "200";  // conversations looked at per property per call
}  // namespace

class escalation_sweeper::impl : public std::enable_shared_from_this<impl> {
 public:
  impl(asio::any_io_executor ex, broker::broker& redis, const contract::key_space& keys,
       escalation_options options, metrics_registry& metrics)
      : strand_(asio::make_strand(ex)),
        timer_(strand_),
        redis_(redis),
        keys_(keys),
        options_(std::move(options)),
        script_(broker::script::make("escalate", std::string(lua::escalate))),
        escalations_(metrics
                         .add_counter("bellhop_escalations_total",
                                      "Conversations escalated to a property's escalation "
                                      "contact (a guest waited for staff too long).")
                         .labels({})),
        errors_(metrics
                    .add_counter("bellhop_escalation_errors_total",
                                 "Failed escalation passes (retried on the next tick).")
                    .labels({})) {
    std::erase_if(options_.properties, [](const property& p) {
      return !p.escalation || (p.escalation->email.empty() && p.escalation->sms.empty());
    });
  }

  void start() {
    if (options_.properties.empty()) return;
    asio::post(strand_, [self = shared_from_this()] {
      if (self->stopped_ || self->started_) return;
      self->started_ = true;
      self->tick();
    });
  }

  void stop() {
    if (stopped_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] { self->timer_.cancel(); });
  }

 private:
  void tick() {
    if (stopped_) return;
    const auto now = sys_clock::now();
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    const auto ts = contract::format_rfc3339(now);
    pending_ = options_.properties.size();
    for (const auto& p : options_.properties) {
      const auto& e = *p.escalation;
      redis_.eval(script_,
                  {keys_.property_conversations_index(p.id), keys_.property_escalation_cursor(p.id),
                   keys_.property_seq(p.id), keys_.property_events(p.id), keys_.outbound("email"),
                   keys_.outbound("sms")},
                  {p.id, std::to_string(now_ms), std::to_string(std::int64_t{e.after_s} * 1000),
                   e.email, e.sms, std::to_string(options_.history_max), keys_.conversation(""),
                   ts, std::string(per_call), p.name.empty() ? p.id : p.name,
                   keys_.property_channel(p.id), std::to_string(options_.conversation_ttl_s)},
                  strand_, [self = shared_from_this(), id = p.id](error_code ec, broker::reply r) {
                    self->done(id, ec, r);
                  });
    }
  }

  void done(const std::string& property_id, error_code ec, const broker::reply& r) {
    if (ec || !r.is_array()) {
      errors_.inc();
      if (sys_clock::now() - last_warn_ > warn_every) {
        last_warn_ = sys_clock::now();
        spdlog::warn("escalation: property {}: {}", property_id,
                     ec ? ec.message() : r.to_string());
      }
    } else {
      for (std::size_t i = 1; i < r.elements().size(); ++i) {
        escalations_.inc();
        spdlog::info("escalation: property {} conversation {}: the guest has waited for staff "
                     "longer than escalation.after_s; the escalation contact is notified",
                     property_id, r.elements()[i].str());
      }
    }
    if (--pending_ > 0 || stopped_) return;
    timer_.expires_after(options_.interval);
    timer_.async_wait([self = shared_from_this()](error_code wait_ec) {
      if (!wait_ec) self->tick();
    });
  }

  asio::strand<asio::any_io_executor> strand_;
  asio::steady_timer timer_;
  broker::broker& redis_;
  const contract::key_space& keys_;
  escalation_options options_;
  broker::script script_;
  counter& escalations_;
  counter& errors_;
  std::size_t pending_ = 0;
  bool started_ = false;
  std::atomic<bool> stopped_{false};
  sys_clock::time_point last_warn_{};
};

escalation_sweeper::escalation_sweeper(asio::any_io_executor ex, broker::broker& redis,
                                       const contract::key_space& keys,
                                       escalation_options options, metrics_registry& metrics)
    : impl_(std::make_shared<impl>(std::move(ex), redis, keys, std::move(options), metrics)) {}

escalation_sweeper::~escalation_sweeper() { stop(); }

void escalation_sweeper::start() { impl_->start(); }
void escalation_sweeper::stop() { impl_->stop(); }

}  // namespace bellhop::gateway
