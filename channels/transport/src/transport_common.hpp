#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "bellhop/broker/broker.hpp"
#include "bellhop/channels/types.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/account_health.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/rate_limits.hpp"
#include "bellhop/core/services.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/transport/lua.hpp"
#include "bellhop/transport/options.hpp"
#include "bellhop/transport/provider_client.hpp"

// What every channel's transport shares (channels/transport/src/<channel>.cpp): a provider
// webhook's plumbing from the verified request to Redis and back, and the pieces of a sender
// lane. Private to the module.

namespace bellhop::gateway {

struct webhook_context {
  const services& svc;
  const contract::key_space& keys;
  const transport_options opts;
  inbound_sink ingest;
  counter_family& results;   // bellhop_webhooks_total{channel,result}
  counter_family& unrouted;  // bellhop_inbound_unrouted_total{channel,reason}
  broker::script status = broker::script::make("outbound_status",
                                               std::string(lua::outbound_status));
  // Each account's last verified and last refused webhook (the admin page's account health).
  std::shared_ptr<account_health> health = std::make_shared<account_health>(keys);
};
using ctx_ptr = std::shared_ptr<webhook_context>;

// The webhook as the channel adapters take it: method, target, lower-case headers, body.
channels::webhook as_webhook(const request& req);
// The adapter's refusal (401, 403, 422, ...) as a JSON error.
response refused(const request& req, const channels::webhook_result& r);
// The same, noted as a failed webhook of `account` (the one whose secret was tried: a webhook
// that no account's secret verifies counts against the channel's first) for the admin page.
response refused(const ctx_ptr& c, std::string_view channel, std::string_view account,
                 const request& req, const responder& res, const channels::webhook_result& r);
// 200: the adapter's own reply body (Twilio's TwiML), or {"status":"ok"}.
response accepted(const request& req, const channels::webhook_result& r);
// 503 before Redis is up: nothing can be stored yet, the provider retries.
response starting(const request& req);
// 404 not_configured for a channel without its section (`section`: "channels.whatsapp").
response not_configured(const ctx_ptr& c, const request& req, std::string_view channel,
                        std::string_view section);
// The account a webhook's message (or status) came to, found by the provider-side id the
// adapter gives (`business`): its id and property, or nullptr when Bellhop knows no such account.
struct routed_account {
  std::string account, property_id;
};
using webhook_route = std::function<const routed_account*(const std::string& business)>;

// How many entries inbound:unrouted keeps (the newest; docs/redis-keys.md).
inline constexpr int unrouted_cap = 10000;

// Stores a verified webhook's messages, each for the property of the account `route` finds for
// it, and its statuses (a status whose adapter names the sender, WhatsApp's, only when `route`
// knows it), then answers: 200 only when all of it is in Redis. What is for an account that
// `route` does not know is kept on inbound:unrouted (one entry per such account, with the
// webhook's body: as JSON when `json_body`, else as a string), counted and logged.
void store_all(const ctx_ptr& c, const std::string& channel, const webhook_route& route,
               channels::webhook_result r, const request& req, responder res, bool json_body);

// A send whose provider call got no answer (connect, TLS, timeout): try again later.
channels::send_result no_answer(const provider_response& r);
// A send that can never be made: dead with `reason`, no provider call.
channels::send_result never_sent(std::string reason);
// The send of a lane whose accounts each call the provider's HTTP API with their own
// settings (`accounts`, by account id): the message's account picks them (the dispatcher
// picked one of the lane's), `check` may refuse the message before any call (its reason, or
// ""), `request` builds the call and `interpret` reads the answer. `what` names an account in
// the refusal of one the lane does not have ("a WhatsApp number").
template <typename Settings, typename Check, typename Request, typename Interpret>
auto account_http_send(std::map<std::string, Settings> accounts, std::string what,
                       std::shared_ptr<provider_client> client, Check check, Request request,
                       Interpret interpret) {
  auto by_id = std::make_shared<const std::map<std::string, Settings>>(std::move(accounts));
  return [by_id, what = std::move(what), client, check, request, interpret](
             const channels::outbound_message& m, boost::asio::any_io_executor ex,
             std::function<void(channels::send_result)> done) {
    auto account = by_id->find(m.account);
    if (account == by_id->end())
      return done(never_sent("account " + m.account + " is not " + what + " of this gateway"));
    if (auto why = check(m); !why.empty())
      return done({channels::send_outcome::permanent, "", "", std::move(why), {}});
    client->call(request(account->second, m), ex,
                 [done = std::move(done), interpret](provider_response r) {
                   done(r.status == 0 ? no_answer(r) : interpret(r.status, r.body, r.headers));
                 });
  };
}

// The configured policy of that name, or nullptr (none configured, or no limiter).
const ratelimit::policy* policy(rate_limits* limits, std::string_view name);

// Each channel: its webhook routes and its sender lane (channels/transport/src/<channel>.cpp).
void add_whatsapp_routes(router& routes, const ctx_ptr& c);
outbound_channel whatsapp_lane(const whatsapp_config& c, std::shared_ptr<provider_client> client,
                               rate_limits* limits);
void add_sms_routes(router& routes, const ctx_ptr& c);
outbound_channel sms_lane(const twilio_config& c, const std::string& public_url,
                          std::shared_ptr<provider_client> client, rate_limits* limits);
void add_email_routes(router& routes, const ctx_ptr& c);
outbound_channel email_lane(const email_config& c, std::chrono::milliseconds timeout,
                            std::size_t concurrency, rate_limits* limits, broker::broker& redis,
                            const contract::key_space& keys);

}  // namespace bellhop::gateway
