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
                          {"channel", "result"})});
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
    lanes.back().property_id = opts.whatsapp->property_id;
  }
  if (opts.twilio) {
    lanes.push_back(sms_lane(*opts.twilio, opts.public_url, client, limits));
    lanes.back().property_id = opts.twilio->property_id;
  }
  if (opts.email) {
    lanes.push_back(
        email_lane(*opts.email, opts.request_timeout, opts.concurrency, limits, redis, keys));
    lanes.back().property_id = opts.email->property_id;
  }
  if (opts.webchat) {
    lanes.push_back(webchat_lane(*opts.webchat, redis, keys));
    lanes.back().property_id = opts.webchat->property_id;
  }
  return lanes;
}

}  // namespace bellhop::gateway
