#include "engine.hpp"

#include <spdlog/spdlog.h>

#include "envelope.hpp"

namespace bellhop::demo {
namespace {

using boost::system::error_code;

// The reply (or hand-off) and the ack in one script: Redis runs it atomically, so a crash can
// never leave a sent reply with an un-acked message (which would be redelivered and answered
// twice), nor an ack without its reply. Only an element still in our processing list is
// answered: if the reaper judged us dead and gave it to another consumer, or if this is a retry
// after a lost connection and the first attempt went through, nothing is pushed.
// The push comes before the LREM because a script is not rolled back when a command fails: an
// LPUSH refused (out of memory under noeviction, wrong type) must find nothing yet written.
const broker::script settle_script = broker::script::make("demo_settle", R"lua(
if not redis.call('LPOS', KEYS[1], ARGV[1]) then
  return 0
end
if KEYS[2] then
  redis.call('LPUSH', KEYS[2], ARGV[2])
end
return redis.call('LREM', KEYS[1], 1, ARGV[1])
)lua");

std::string describe(error_code ec, const broker::reply& r) {
  return r.is_error() ? r.str() : ec.message();
}

}  // namespace

engine::engine(boost::asio::any_io_executor ex, broker::broker& redis, faq rules, engine_options o)
    : ex_(ex),
      redis_(redis),
      faq_(std::move(rules)),
      options_(std::move(o)),
      inbound_(key("inbound:messages")),
      processing_(key("inbound:messages:processing:" + options_.consumer)),
      heartbeat_(key("inbound:messages:heartbeat:" + options_.consumer)),
      consumers_(key("inbound:messages:consumers")),
      heartbeat_timer_(ex),
      retry_timer_(ex),
      backoff_(std::chrono::milliseconds(100), std::chrono::milliseconds(5000)) {}

void engine::start(std::function<void()> on_stopped) {
  on_stopped_ = std::move(on_stopped);
  spdlog::info("consumer {}: taking from {} into {}", options_.consumer, inbound_, processing_);
  first_heartbeat();
}

void engine::stop() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("stopping: finishing the message in hand");
  heartbeat_timer_.cancel();
  retry_timer_.cancel();  // a pending retry runs now and sees stopping_
}

// The heartbeat key, then our name in the consumer registry (the reaper reads the registry
// instead of scanning the keyspace). One connection keeps the two in this order.
template <typename Handler>
void engine::beat(Handler&& handler) {
  const auto px = std::to_string(options_.visibility_timeout.count());
  redis_.post({"SET", heartbeat_, "1", "PX", px}, ex_, [](error_code, broker::reply) {});
  redis_.post({"SADD", consumers_, options_.consumer}, ex_, std::forward<Handler>(handler));
}

void engine::first_heartbeat() {
  if (stopping_) return shut_down();
  beat([this](error_code ec, broker::reply r) {
    if (ec || r.is_error()) {
      spdlog::warn("cannot set the heartbeat {}: {}; retrying", heartbeat_, describe(ec, r));
      return retry([this] { first_heartbeat(); });
    }
    backoff_.reset();
    schedule_heartbeat();
    take();
  });
}

void engine::schedule_heartbeat() {
  heartbeat_timer_.expires_after(options_.visibility_timeout / 3);
  heartbeat_timer_.async_wait([this](error_code ec) {
    if (ec || stopping_) return;  // never SET after stop(): the DEL must be the last word
    beat([this](error_code ec, broker::reply r) {
      // A missed beat is not fatal; missing them for a whole visibility timeout lets the reaper
      // redeliver our in-flight message, and settle_script then declines to answer it twice.
      if (ec) spdlog::warn("heartbeat {} not refreshed: {}", heartbeat_, describe(ec, r));
    });
    schedule_heartbeat();
  });
}

void engine::take() {
  if (stopping_) return shut_down();
  const auto block = options_.block;
  redis_.post_blocking(
      {"BLMOVE", inbound_, processing_, "RIGHT", "LEFT", std::to_string(block.count())},
      block + std::chrono::seconds(5), ex_, [this](error_code ec, broker::reply r) {
        if (ec) {
          if (stopping_) return shut_down();
          spdlog::warn("BLMOVE from {} failed: {}; retrying", inbound_, describe(ec, r));
          return retry([this] { take(); });
        }
        backoff_.reset();
        if (r.is_string()) return handle(r.str());
        if (!r.is_nil()) spdlog::warn("BLMOVE: unexpected reply {}", r.to_string());
        take();  // timed out with nothing to take
      });
}

void engine::handle(std::string element) {
  auto in = parse_envelope(element);
  if (!in) return ack_invalid(std::move(element), in.error());
  if (const faq_rule* rule = faq_.match(in->text)) {
    auto what = "answered " + in->id + " (" + in->channel + ", rule " + rule->name + ")";
    settle(std::move(element), key("outbound:" + in->channel), make_reply(*in, rule->answer),
           std::move(what));
  } else {
    auto record = make_handoff(*in);
    auto what = "handed " + in->id + " to staff: " + record;
    settle(std::move(element), key("handoff:staff"), std::move(record), std::move(what));
  }
}

void engine::ack_invalid(std::string element, std::string why) {
  spdlog::warn("acking an invalid element of {} ({} bytes): {}", inbound_, element.size(), why);
  settle(std::move(element), {}, {}, "dropped an invalid element");
}

void engine::settle(std::string element, std::string list, std::string payload, std::string what) {
  std::vector<std::string> keys{processing_};
  std::vector<std::string> args{element};
  if (!list.empty()) {
    keys.push_back(list);
    args.push_back(payload);
  }
  redis_.eval(
      settle_script, std::move(keys), std::move(args), ex_,
      [this, element = std::move(element), list = std::move(list), payload = std::move(payload),
       what = std::move(what)](error_code ec, broker::reply r) mutable {
        if (ec) {
          if (stopping_) {
            spdlog::warn(
                "could not settle a message while stopping ({}); it stays in {}"
                " and will be redelivered",
                describe(ec, r), processing_);
            return shut_down();
          }
          spdlog::warn("could not settle a message: {}; retrying", describe(ec, r));
          return retry([this, element = std::move(element), list = std::move(list),
                        payload = std::move(payload), what = std::move(what)]() mutable {
            settle(std::move(element), std::move(list), std::move(payload), std::move(what));
          });
        }
        backoff_.reset();
        if (r.is_integer() && r.integer() == 1) {
          ++handled_;
          spdlog::info("{}", what);
        } else {
          // Settled by an earlier attempt whose reply was lost, or taken back by the
          // reaper: either way someone else's answer (or none) is the right one.
          spdlog::warn("a message was no longer in {}; nothing sent", processing_);
        }
        take();
      });
}

void engine::retry(std::function<void()> fn) {
  const auto delay = stopping_ ? std::chrono::milliseconds(0) : backoff_.next();
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([fn = std::move(fn)](error_code) { fn(); });
}

void engine::shut_down() {
  if (shut_down_) return;
  shut_down_ = true;
  heartbeat_timer_.cancel();
  redis_.post({"DEL", heartbeat_}, ex_, [this](error_code ec, broker::reply r) {
    if (ec) {
      spdlog::warn("could not delete the heartbeat {}: {}; it expires in {} ms", heartbeat_,
                   describe(ec, r), options_.visibility_timeout.count());
    } else {
      spdlog::info("heartbeat {} deleted; {} messages handled", heartbeat_, handled_);
    }
    if (on_stopped_) std::exchange(on_stopped_, nullptr)();
  });
}

}  // namespace bellhop::demo
