#pragma once

#include <boost/beast/core/tcp_stream.hpp>
#include <memory>

#include "bellhop/transport/options.hpp"
#include "bellhop/server/http_server.hpp"
#include "bellhop/contract/keys.hpp"
#include "bellhop/core/metrics.hpp"
#include "bellhop/server/router.hpp"
#include "bellhop/core/ingest.hpp"
#include "bellhop/core/outbound_lane.hpp"
#include "bellhop/core/services.hpp"

namespace bellhop::gateway {

// Web chat on GET /v1/webchat (WebSocket): a guest of the hotel's site talks to the property of
// channels.webchat without an account. The first connection gets a session token (the browser
// keeps it and comes back with ?session=…); the guest is known by a name derived from it
// ("wc_" + 32 hex of its SHA-256), so the token itself never reaches Redis, dashboards or the
// AI engine. Frames (docs/webchat.md):
//   guest -> Bellhop  {"type":"message","client_id":"…","text":"…"}   ingested like any channel
//                     {"type":"received","id":"…"}                    a reply was shown
//   Bellhop -> guest  {"type":"welcome","session","guest","property_id"}
//                     {"type":"ack","client_id","id","status":"queued"|"duplicate"}
//                     {"type":"message","id","text","attachments","sent_at"}  a reply
//                     {"type":"error","code","message"[,"client_id"][,"retry_after_ms"]}
// Replies wait in the guest's outbox until a socket of theirs confirms them ("received"), for
// hold_s; each (re)connection gets what is waiting, so a reply is shown at least once.
class webchat_service {
 public:
  webchat_service(const services& svc, const contract::key_space& keys, const transport_options& opts,
                  inbound_sink ingest, metrics_registry& metrics);
  ~webchat_service();
  webchat_service(const webchat_service&) = delete;
  webchat_service& operator=(const webchat_service&) = delete;

  // The upgrade handler of /v1/webchat (refuses with 404 when the channel is not configured,
  // 503 / 429 at channels.webchat.max_sockets / max_sockets_per_ip).
  void accept(boost::beast::tcp_stream stream, request req, upgrade_context ctx);

  struct shared;

 private:
  std::shared_ptr<shared> shared_;
};

// GET /v1/webchat/widget.js: the guests' chat widget for the hotel's pages
// (channels/transport/web/webchat_widget.js, built into the binary), with an ETag; 404 not_configured
// without channels.webchat.
void add_webchat_routes(router& routes, const transport_options& opts);

// The outbound lane of web chat: a reply goes to the guest's outbox and open sockets; it is
// `sent` once stored (the guest may read it later), with its id as the provider id.
outbound_channel webchat_lane(const webchat_config& c, broker::broker& redis,
                              const contract::key_space& keys);

}  // namespace bellhop::gateway
