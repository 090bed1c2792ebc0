#include "bellhop/console/pages.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "bellhop/server/json_response.hpp"
#include "bellhop/server/static_file.hpp"
#include "console_web.hpp"

namespace bellhop::gateway {

namespace {

// No inline script or style anywhere, nothing from another origin; data: images only for the
// favicon placeholder.
constexpr std::string_view content_security_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

std::string_view content_type_of(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  return "application/octet-stream";
}

static_file asset_of(std::string_view name) {
  for (const auto& f : console_web::files) {
    if (f.name == name) return static_file::of(f.body, content_type_of(f.name));
  }
  throw std::logic_error("console/web/ has no " + std::string(name));  // a build defect
}

void set_page_headers(response& out) {
  out.set("Content-Security-Policy", content_security_policy);
  out.set("X-Content-Type-Options", "nosniff");
  out.set("Referrer-Policy", "no-referrer");
  // Revalidated on every load (a 304 when unchanged): an upgraded Bellhop's pages show at once.
  out.set(http::field::cache_control, "no-cache");
}

response serve(const request& req, const static_file& a,
               http::status status = http::status::ok) {
  auto out = serve_static(req, a, status);
  set_page_headers(out);
  return out;
}

void add_redirect(router& routes, std::string from, std::string to) {
  routes.add(http::verb::get, std::move(from),
             [to = std::move(to)](const request& req, responder res) {
               response out{http::status::moved_permanently, req.version()};
               set_page_headers(out);
               out.set(http::field::location, to);
               out.keep_alive(req.keep_alive());
               out.prepare_payload();
               res.send(std::move(out));
             });
}

}  // namespace

void add_console_pages(router& routes, session_lookup lookup) {
  for (const auto& f : console_web::files) {
    if (std::string_view(f.name).ends_with(".html")) continue;  // the pages have their own paths
    routes.add(
        http::verb::get, "/console/" + std::string(f.name),
        [a = asset_of(f.name)](const request& req, responder res) { res.send(serve(req, a)); });
  }
  routes.add(http::verb::get, "/console/",
             [a = asset_of("console.html")](const request& req, responder res) {
               res.send(serve(req, a));
             });
  add_redirect(routes, "/console", "/console/");
  add_redirect(routes, "/admin", "/admin/");

  // The admin page to anyone but a signed-in staff member: without a session (or with an admin's)
  // it loads and shows the sign-in form or the page; the API behind it checks every call.
  auto admin = std::make_shared<const static_file>(asset_of("admin.html"));
  auto forbidden = std::make_shared<const static_file>(asset_of("forbidden.html"));
  routes.add(
      http::verb::get, "/admin/", [admin, forbidden, lookup](const request& req, responder res) {
        const auto cookie = session_cookie(req[http::field::cookie]);
        if (cookie.empty() || !lookup) return res.send(serve(req, *admin));
        auto shell = request_shell(req);  // the request belongs to the connection
        shell.set(http::field::if_none_match, req[http::field::if_none_match]);
        lookup(std::string(cookie), [req = std::move(shell), admin, forbidden, res](
                                        session_status status, std::optional<staff_principal> who) {
          const bool staff = status == session_status::ok && who && !who->admin;
          res.send(staff ? serve(req, *forbidden, http::status::forbidden) : serve(req, *admin));
        });
      });
}

}  // namespace bellhop::gateway
