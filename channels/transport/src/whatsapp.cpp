#include "transport_common.hpp"

#include "bellhop/channels/whatsapp.hpp"

namespace bellhop::gateway {
namespace {

void whatsapp(const ctx_ptr& c, const request& req, responder res) {
  const auto& wa = c->opts.whatsapp;
  if (!wa) {
    return res.send(not_configured(c, req, "whatsapp", "channels.whatsapp"));
  }
  const channels::whatsapp::settings s{wa->app_secret, wa->verify_token, wa->access_token,
                                       wa->phone_number_id, wa->api_base_url};
  const auto hook = as_webhook(req);
  if (req.method() == http::verb::get) {
    auto r = channels::whatsapp::verify_subscription(s, hook);
    c->results.labels({"whatsapp", r.accepted() ? "verified" : "refused"}).inc();
    return res.send(r.accepted() ? accepted(req, r) : refused(req, r));
  }
  auto r = channels::whatsapp::parse_webhook(s, hook);
  if (!r.accepted()) {
    c->results.labels({"whatsapp", "refused"}).inc();
    return res.send(refused(req, r));
  }
  if (!c->svc.redis) return res.send(starting(req));
  store_all(c, "whatsapp", wa->phone_number_id, wa->property_id, std::move(r), req,
            std::move(res));
}

}  // namespace

void add_whatsapp_routes(router& routes, const ctx_ptr& c) {
  for (auto verb : {http::verb::get, http::verb::post}) {
    routes.add(verb, "/v1/webhooks/whatsapp",
               [c](const request& req, responder res) { whatsapp(c, req, std::move(res)); });
  }
}

outbound_channel whatsapp_lane(const whatsapp_config& c, std::shared_ptr<provider_client> client,
                               rate_limits* limits) {
  channels::whatsapp::settings s{c.app_secret, c.verify_token, c.access_token, c.phone_number_id,
                                 c.api_base_url};
  outbound_channel lane;
  lane.name = "whatsapp";
  lane.send = [s, client](const channels::outbound_message& m, boost::asio::any_io_executor ex,
                          std::function<void(channels::send_result)> done) {
    if (auto why = channels::whatsapp::recipient_error(m.to); !why.empty()) {
      return done({channels::send_outcome::permanent, "", "", std::move(why), {}});
    }
    client->call(channels::whatsapp::send_request(s, m), ex,
                 [done = std::move(done)](provider_response r) {
                   done(r.status == 0 ? no_answer(r)
                                      : channels::whatsapp::interpret_send(r.status, r.body,
                                                                           r.headers));
                 });
  };
  // Meta's throughput per business number, and its pair rate limit per recipient.
  const auto* sender = policy(limits, channels::whatsapp::business_number_limit.name);
  const auto* recipient = policy(limits, channels::whatsapp::recipient_limit.name);
  const std::string number = c.phone_number_id;
  lane.limits = [sender, recipient, number](const channels::outbound_message& m) {
    std::vector<ratelimit::limit_key> keys;
    if (sender) keys.push_back({sender, number});
    if (recipient) keys.push_back({recipient, number + ":" + m.to});
    return keys;
  };
  lane.channel_wide_limits = sender ? 1 : 0;
  // The customer-service window, decided when the message is taken to send (docs/outbound.md).
  if (c.service_window_s == 0) return lane;
  lane.reads_last_inbound = true;
  const std::int64_t window_ms = std::int64_t{c.service_window_s} * 1000;
  lane.admit = [window_ms](channels::outbound_message& m, std::int64_t now_ms) {
    return channels::whatsapp::admit(m, now_ms, window_ms);
  };
  return lane;
}

}  // namespace bellhop::gateway
