#pragma once

#include <boost/beast/core/tcp_stream.hpp>

#include "bellhop/server/http_types.hpp"

namespace bellhop::gateway {

// Answers a WebSocket upgrade request that is refused before the handshake (web chat, the
// dashboards' realtime socket) with `res`, then closes the connection: Server: bellhop,
// Connection: close, at most 5 s to write it.
void refuse_upgrade(boost::beast::tcp_stream stream, response res);

}  // namespace bellhop::gateway
