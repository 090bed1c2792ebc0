#include "transport_common.hpp"

#include "bellhop/channels/twilio.hpp"

namespace bellhop::gateway {
namespace {

// Twilio: an incoming SMS (`sms`) or a status callback (`status`).
void twilio(const ctx_ptr& c, const request& req, responder res, bool status) {
  const auto& tw = c->opts.twilio;
  if (!tw) {
    return res.send(not_configured(c, req, "sms", "channels.twilio"));
  }
  const channels::twilio::settings s{tw->account_sid, tw->auth_token, tw->from, tw->api_base_url,
                                     c->opts.public_url};
  const auto hook = as_webhook(req);
  auto r = status ? channels::twilio::parse_status_webhook(s, hook)
                  : channels::twilio::parse_sms_webhook(s, hook);
  if (!r.accepted()) {
    c->results.labels({"sms", "refused"}).inc();
    return res.send(refused(req, r));
  }
  if (!c->svc.redis) return res.send(starting(req));
  // A sender that is a messaging service (MG…) has no one number guests write to.
  const std::string number = !tw->from.empty() && tw->from[0] == '+' ? tw->from : "";
  store_all(c, "sms", number, tw->property_id, std::move(r), req, std::move(res));
}

}  // namespace

void add_sms_routes(router& routes, const ctx_ptr& c) {
  routes.add(http::verb::post, "/v1/webhooks/twilio/sms", [c](const request& req, responder res) {
    twilio(c, req, std::move(res), false);
  });
  routes.add(http::verb::post, "/v1/webhooks/twilio/status",
             [c](const request& req, responder res) { twilio(c, req, std::move(res), true); });
}

outbound_channel sms_lane(const twilio_config& c, const std::string& public_url,
                          std::shared_ptr<provider_client> client, rate_limits* limits) {
  channels::twilio::settings s{c.account_sid, c.auth_token, c.from, c.api_base_url, public_url};
  outbound_channel lane;
  lane.name = "sms";
  lane.opt_out = true;  // a guest who replied STOP gets nothing more
  lane.send = [s, client](const channels::outbound_message& m, boost::asio::any_io_executor ex,
                          std::function<void(channels::send_result)> done) {
    client->call(channels::twilio::send_request(s, m), ex,
                 [done = std::move(done)](provider_response r) {
                   done(r.status == 0 ? no_answer(r)
                                      : channels::twilio::interpret_send(r.status, r.body,
                                                                         r.headers));
                 });
  };
  // Twilio's pace per sender number, its per-recipient window, and the property's caps.
  const auto* sender = policy(limits, channels::twilio::sender_limit.name);
  const auto* recipient = policy(limits, channels::twilio::recipient_limit.name);
  std::vector<const ratelimit::policy*> caps;
  for (const auto& limit : channels::twilio::property_limits)
    if (const auto* p = policy(limits, limit.name)) caps.push_back(p);
  const std::string from = c.from;
  lane.limits = [sender, recipient, caps, from](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, from});
    if (recipient) keys.push_back({recipient, from + ":" + m.to});
    for (const auto* p : caps) keys.push_back({p, m.property_id});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  return lane;
}

}  // namespace bellhop::gateway
