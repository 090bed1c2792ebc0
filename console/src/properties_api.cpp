#include "bellhop/console/properties_api.hpp"

#include <rapidjson/stringbuffer.h>

#include <memory>

#include "bellhop/json/write.hpp"
#include "bellhop/server/json_response.hpp"

namespace bellhop::gateway {
namespace {

// {"properties":[{"id","name","time_zone"}…]}: the configured properties `who` covers, in the
// configuration's order. Names and zones come from the config file, never from a request.
std::string properties_body(const std::vector<property>& all, const staff_principal& who) {
  rapidjson::StringBuffer out;
  json::writer w(out);
  w.StartObject();
  w.Key("properties");
  w.StartArray();
  for (const auto& p : all) {
    if (!who.allows(p.id)) continue;
    w.StartObject();
    json::put(w, "id", p.id);
    json::put(w, "name", p.name.empty() ? p.id : p.name);
    json::put(w, "time_zone", p.time_zone);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {out.GetString(), out.GetSize()};
}

}  // namespace

void add_properties_route(router& routes, const console_options& options,
                          const session_lookup& sessions) {
  auto all = std::make_shared<const std::vector<property>>(options.properties);
  routes.add(http::verb::get, "/v1/properties",
             [all, secret = options.jwt_secret, &sessions](const request& req, responder res) {
               authenticate_staff(req, secret, sessions, res.executor(),
                                  [all, res, shell = request_shell(req)](staff_auth_result who) {
                                    if (!who) return res.send(auth_refusal(shell, who.error()));
                                    auto r = json_response(shell, http::status::ok,
                                                           properties_body(*all, *who));
                                    r.set(http::field::cache_control, "no-store");
                                    res.send(std::move(r));
                                  });
             });
}

}  // namespace bellhop::gateway
