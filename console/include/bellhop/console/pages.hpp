#pragma once

#include "bellhop/server/router.hpp"
#include "bellhop/server/staff_auth.hpp"

namespace bellhop::gateway {

// The console's pages, embedded from console/web/ (docs/console.md, "Inbox", "Admin page"):
// GET /console/ (the staff inbox), GET /admin/ (the admin page: 403 to a signed-in staff
// session, the sign-in form without one), their scripts and style under /console/, and
// /console, /admin redirecting to the slash form. Every answer carries the strict
// Content-Security-Policy of docs/security.md ("The console") and an ETag. `lookup` (may be null:
// no sessions) tells /admin/ who the session cookie belongs to; what it refers to must outlive the
// router.
void add_console_pages(router& routes, session_lookup lookup);

}  // namespace bellhop::gateway
