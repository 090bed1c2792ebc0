#include "bellhop/dashboard/conversation_state.hpp"

#include <chrono>

#include "bellhop/contract/ids.hpp"
#include "bellhop/core/redis_full.hpp"
#include "bellhop/dashboard/lua.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

using boost::system::error_code;

contract::conversation_change_result failed(std::string code, std::string message) {
  return {0, {}, std::move(code), std::move(message)};
}

}  // namespace

conversation_writer::conversation_writer(const services& svc, const contract::key_space& keys,
                                         const dashboard_options& options)
    : svc_(svc),
      keys_(keys),
      options_(options),
      script_(broker::script::make("conversation_change", std::string(lua::conversation_change))) {}

void conversation_writer::change(contract::conversation_change c, boost::asio::any_io_executor ex,
                                 contract::conversation_change_callback done) const {
  if (!svc_.redis)
    return done(failed("unavailable", "Redis is unavailable (Bellhop is starting); retry later"));
  if (c.change != "read" && refuse_new_data(svc_.memory.get(), *svc_.redis))
    return done(failed("redis_full", std::string(redis_full_message)));
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const auto& k = keys_;
  std::vector<std::string> keys = {k.conversation(c.conversation_id),
                                   k.property_unread(c.property_id), k.property_seq(c.property_id),
                                   k.property_events(c.property_id),
                                   k.property_escalation(c.property_id)};
  std::vector<std::string> args = {c.conversation_id,
                                   c.property_id,
                                   c.change,
                                   c.by,
                                   c.reason,
                                   c.confidence,
                                   c.assignee,
                                   std::to_string(ms),
                                   contract::format_timestamp(now),
                                   std::to_string(options_.history_max),
                                   k.property_channel(c.property_id)};
  svc_.redis->eval(
      script_, std::move(keys), std::move(args), std::move(ex),
      [done = std::move(done)](error_code ec, broker::reply r) {
        if (is_redis_full(r)) return done(failed("redis_full", std::string(redis_full_message)));
        const auto& el = r.elements();
        if (ec || !r.is_array() || el.size() < 2 || !el[0].is_integer())
          return done(failed("unavailable",
                             "Redis is unavailable; the conversation was not changed, retry"));
        if (el[0].integer() < 0)
          return done(failed("not_found", "no such conversation in this property"));
        if (el.size() < 3 || !el[1].is_integer() || !el[2].is_string())
          return done(failed("unavailable", "unexpected reply from Redis; retry"));
        done({static_cast<std::uint64_t>(el[1].integer()), el[2].str(), {}, {}});
      });
}

contract::conversation_changer make_conversation_changer(
    std::shared_ptr<const conversation_writer> writer, boost::asio::any_io_executor ex) {
  return [writer = std::move(writer), ex](contract::conversation_change c,
                                          contract::conversation_change_callback done) {
    writer->change(std::move(c), ex, std::move(done));
  };
}

}  // namespace bellhop::gateway
