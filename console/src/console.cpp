#include "bellhop/console/console.hpp"

#include "pages.hpp"

namespace bellhop::gateway {

session_lookup add_console_routes(router& routes, const services& svc,
                                  const contract::key_space& keys, const console_options& options,
                                  metrics_registry& metrics) {
  (void)svc, (void)keys, (void)options, (void)metrics;
  session_lookup lookup;  // sign-in (part AUTH) makes it
  add_console_pages(routes, lookup);
  return lookup;
}

}  // namespace bellhop::gateway
