#pragma once

#include <optional>
#include <string>

// A property (one hotel) as configured in the `properties` section (docs/properties.md): its
// name, its local time zone, its quiet hours and whom to alert when a guest waits for staff.
// Flows receive the properties they need as data; none reads the configuration itself.

namespace bellhop::gateway {

// Local wall-clock times, minutes after midnight. start > end spans midnight (22:00–07:00);
// start == end is refused by the config loader.
struct quiet_hours {
  int start_min = 0;
  int end_min = 0;
};

// One notification when a guest message in a conversation with staff waits `after_s` seconds
// unread and unanswered: by email, by SMS, or both.
struct escalation_contact {
  int after_s = 300;
  std::string email;  // "" = none
  std::string sms;    // E.164, "" = none
};

struct property {
  std::string id;
  std::string name;               // display name ("" = the id)
  std::string time_zone = "UTC";  // IANA name, checked against the system's tz database
  std::optional<quiet_hours> quiet;
  std::optional<escalation_contact> escalation;
};

}  // namespace bellhop::gateway
