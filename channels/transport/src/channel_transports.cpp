#include "bellhop/transport/channel_transports.hpp"

#include "bellhop/transport/webchat.hpp"
#include "transport_common.hpp"

namespace bellhop::gateway {

void add_webhook_routes(router& routes, const services& svc, const contract::key_space& keys,
                        const transport_options& opts, inbound_sink ingest,
                        metrics_registry& metrics) {
  auto c = std::make_shared<webhook_context>(webhook_context{
      svc, keys, opts, std::move(ingest),
      metrics.add_counter("bellhop_webhooks_total",
                          "Provider webhooks by channel and result (accepted, refused, "
                          "unavailable, verified, not_configured).",
                          {"channel", "result"}),
      metrics.add_counter("bellhop_inbound_unrouted_total",
                          "Webhook messages and statuses for an account Bellhop does not know, "
                          "kept on inbound:unrouted, by channel and reason (unknown_account).",
                          {"channel", "reason"})});
  add_whatsapp_routes(routes, c);
  add_sms_routes(routes, c);
  add_email_routes(routes, c);
}

std::vector<outbound_channel> make_outbound_channels(const transport_options& opts,
                                                     std::shared_ptr<provider_client> client,
                                                     rate_limits* limits, broker::broker& redis,
                                                     const contract::key_space& keys) {
  std::vector<outbound_channel> lanes;
  if (opts.whatsapp) {
    lanes.push_back(whatsapp_lane(*opts.whatsapp, client, limits));
    for (const auto& a : opts.whatsapp->accounts)
      lanes.back().accounts.push_back({a.phone_number_id, a.property_id});
  }
  if (opts.twilio) {
    lanes.push_back(sms_lane(*opts.twilio, opts.public_url, client, limits));
    for (const auto& a : opts.twilio->accounts)
      lanes.back().accounts.push_back({a.from, a.property_id});
  }
  if (opts.email) {
    lanes.push_back(
        email_lane(*opts.email, opts.request_timeout, opts.concurrency, limits, redis, keys));
    for (const auto& a : opts.email->accounts)
      lanes.back().accounts.push_back({a.id, a.property_id});
  }
  if (opts.webchat) {
    lanes.push_back(webchat_lane(*opts.webchat, redis, keys));
    for (const auto& s : opts.webchat->sites)
      lanes.back().accounts.push_back({s.id, s.property_id});
  }
  return lanes;
}

}  // namespace bellhop::gateway
