#include "engine.hpp"

#include <spdlog/spdlog.h>

#include "envelope.hpp"

namespace bellhop::demo {
namespace {

using boost::system::error_code;

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
      // redeliver our in-flight message, and settle() then declines to answer it twice.
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
  } else if (in->conversation_mode == "human") {
    // Staff answer this conversation: no second hand-off, nothing to suggest.
    settle(std::move(element), {}, {}, "left " + in->id + " to staff (conversation with staff)");
  } else {
    auto record = make_handoff(*in);
    auto what = "handed " + in->id + " to staff: " + record;
    settle(std::move(element), key("outbound:" + in->channel), std::move(record), std::move(what));
  }
}

void engine::ack_invalid(std::string element, std::string why) {
  spdlog::warn("acking an invalid element of {} ({} bytes): {}", inbound_, element.size(), why);
  settle(std::move(element), {}, {}, "dropped an invalid element");
}

// The reply (or hand-off) and the ack in one MULTI/EXEC: Redis runs it whole or not at all (a
// push refused while queueing, e.g. out of memory, aborts the EXEC), so a crash can never leave a
// sent reply with an un-acked message (which would be redelivered and answered twice), nor an ack
// without its reply. Bellhop's engine user may not run scripts (docs/ai-engine.md, "Connecting"),
// so whether the element is still ours is checked just before, with LPOS: if the reaper judged
// us dead and gave it to another consumer, or if this is a retry after a lost connection and the
// first attempt went through, nothing is pushed. The reply's idempotency_key covers the short
// window between the check and the EXEC.
void engine::settle(std::string element, std::string list, std::string payload, std::string what) {
  broker::command check{"LPOS", processing_, element};  // before the handler takes `element`
  redis_.post(
      std::move(check), ex_,
      [this, element = std::move(element), list = std::move(list), payload = std::move(payload),
       what = std::move(what)](error_code ec, broker::reply r) mutable {
        if (ec) {
          return settle_failed(describe(ec, r), std::move(element), std::move(list),
                               std::move(payload), std::move(what));
        }
        if (r.is_nil()) {
          // Settled by an earlier attempt whose reply was lost, or taken back by the
          // reaper: either way someone else's answer (or none) is the right one.
          spdlog::warn("a message was no longer in {}; nothing sent", processing_);
          return take();
        }
        commit(std::move(element), std::move(list), std::move(payload), std::move(what));
      });
}

void engine::commit(std::string element, std::string list, std::string payload, std::string what) {
  // Posted back to back from this executor, they go out in this order on one connection; the
  // EXEC's answer says what happened to all of them.
  redis_.post({"MULTI"}, ex_, [](error_code, broker::reply) {});
  if (!list.empty()) redis_.post({"LPUSH", list, payload}, ex_, [](error_code, broker::reply) {});
  redis_.post({"LREM", processing_, "1", element}, ex_, [](error_code, broker::reply) {});
  redis_.post(
      {"EXEC"}, ex_,
      [this, element = std::move(element), list = std::move(list), payload = std::move(payload),
       what = std::move(what)](error_code ec, broker::reply r) mutable {
        if (ec || !r.is_array() || r.elements().empty()) {
          return settle_failed(ec ? describe(ec, r) : "EXEC answered " + r.to_string(),
                               std::move(element), std::move(list), std::move(payload),
                               std::move(what));
        }
        backoff_.reset();
        const auto& removed = r.elements().back();  // the LREM's count
        if (removed.is_integer() && removed.integer() == 1) {
          ++handled_;
          spdlog::info("{}", what);
        } else {
          spdlog::warn("a message left {} while it was settled", processing_);
        }
        take();
      });
}

void engine::settle_failed(std::string why, std::string element, std::string list,
                           std::string payload, std::string what) {
  if (stopping_) {
    spdlog::warn(
        "could not settle a message while stopping ({}); it stays in {}"
        " and will be redelivered",
        why, processing_);
    return shut_down();
  }
  spdlog::warn("could not settle a message: {}; retrying", why);
  retry([this, element = std::move(element), list = std::move(list), payload = std::move(payload),
         what = std::move(what)]() mutable {
    settle(std::move(element), std::move(list), std::move(payload), std::move(what));
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
