#pragma once

// A WhatsApp template message (docs/outbound.md, "Templates"): a message the business had
// approved by Meta, named, in one of its languages, its variables filled in by components.
// The outbound JSON's "template" member is read here and nowhere else, bounded, and written
// back here: the filed message and the Graph API body carry the same components.

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <vector>

#include "bellhop/json/write.hpp"

namespace bellhop::channels {

struct template_parameter {
  std::string type;            // "text" or "payload" (a quick-reply button's)
  std::string value;           // the text or the payload
  std::string parameter_name;  // a named variable's name, "" for a numbered one
};

struct template_component {
  std::string type;      // "header", "body" or "button"
  std::string sub_type;  // a button's: "quick_reply", "url", …; "" otherwise
  int index = -1;        // a button's position, 0 to 9; -1 otherwise
  std::vector<template_parameter> parameters;
};

struct message_template {
  std::string name;      // [a-z0-9_]{1,512}
  std::string language;  // "en", "en_US": 2 or 3 lower-case letters, optionally _ and 2 capitals
  std::vector<template_component> components;
};

// Bounds of a template (over them it is refused).
inline constexpr std::size_t max_template_name_bytes = 512;
inline constexpr std::size_t max_template_components = 10;
inline constexpr std::size_t max_template_parameters = 32;     // per component
inline constexpr std::size_t max_template_value_bytes = 1024;  // a text or a payload
inline constexpr std::size_t max_template_parameter_name_bytes = 64;

// Why a refused template is refused, and where.
struct template_fault {
  std::string message;  // "" when the template was read
  std::string field;    // "template.components[1].parameters[0].text"
};

// Reads the outbound JSON's "template" value:
//   {"name": [a-z0-9_]{1,512}, "language": "en" | "en_US" (a Meta language code),
//    "components"?: [ at most 10 of
//      {"type": "header" | "body" | "button",
//       "sub_type"?: [a-z0-9_]{1,32} (a button's, required there: "quick_reply", "url", …),
//       "index"?: 0–9 or "0"–"9" (a button's, required there),
//       "parameters"?: [ at most 32 of
//         {"type": "text", "text": 1–1024 bytes, "parameter_name"?: [a-z0-9_]{1,64}} |
//         {"type": "payload", "payload": 1–1024 bytes} ] } ] }
// Anything else (another member type, an unknown parameter type, sub_type or index on a
// header or body) is refused, with the field at fault.
template_fault read_template(const rapidjson::Value& v, message_template& out);

// `t` as the outbound JSON has it: {"name","language","components"?} (components when any).
void write_template(json::writer& w, const message_template& t);

// The components as the Graph API takes them: [{"type","sub_type"?,"index"?,"parameters":[
// {"type":"text","text","parameter_name"?} | {"type":"payload","payload"}]}].
void write_template_components(json::writer& w, const std::vector<template_component>& c);

}  // namespace bellhop::channels
