#include "bellhop/channels/message_template.hpp"

#include <algorithm>
#include <string_view>

namespace bellhop::channels {
namespace {

using json::put;

bool lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

// [a-z0-9_]{1,max}
bool is_identifier(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && std::all_of(s.begin(), s.end(), lower_alnum);
}

// "en", "fil", "en_US", "pt_BR": Meta's language codes.
bool is_language(std::string_view s) {
  const auto letters = [](std::string_view p, char lo, char hi) {
    return std::all_of(p.begin(), p.end(), [=](char c) { return c >= lo && c <= hi; });
  };
  const auto cut = s.find('_');
  const auto lang = s.substr(0, cut);
  if (lang.size() < 2 || lang.size() > 3 || !letters(lang, 'a', 'z')) return false;
  if (cut == std::string_view::npos) return true;
  const auto region = s.substr(cut + 1);
  return region.size() == 2 && letters(region, 'A', 'Z');
}

// The member `name` of object `o`, or nullptr when it is absent or null.
const rapidjson::Value* member(const rapidjson::Value& o, const char* name) {
  auto it = o.FindMember(name);
  return it == o.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}
std::string_view text(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// Whether `o` has a member other than `known` (a misspelt one would be dropped silently
// otherwise). Its name is not echoed: it is the client's text.
bool unknown_member(const rapidjson::Value& o, std::initializer_list<std::string_view> known) {
  for (auto it = o.MemberBegin(); it != o.MemberEnd(); ++it) {
    const std::string_view n(it->name.GetString(), it->name.GetStringLength());
    if (std::find(known.begin(), known.end(), n) == known.end()) return true;
  }
  return false;
}

template_fault fault(std::string message, std::string field) {
  return {std::move(message), std::move(field)};
}

template_fault read_parameter(const rapidjson::Value& v, const std::string& at,
                              template_parameter& p) {
  if (!v.IsObject()) return fault(at + " must be an object", at);
  const auto* type = member(v, "type");
  if (type == nullptr || !type->IsString() || (text(*type) != "text" && text(*type) != "payload"))
    return fault(at + ".type must be \"text\" or \"payload\"", at + ".type");
  if (unknown_member(v, {"type", "text", "payload", "parameter_name"}))
    return fault(at + " has a member other than type, text, payload, parameter_name", at);
  p.type = text(*type);
  const auto* value = member(v, p.type.c_str());
  if (value == nullptr || !value->IsString() || value->GetStringLength() == 0 ||
      value->GetStringLength() > max_template_value_bytes)
    return fault(at + "." + p.type + " must be a string of 1 to " +
                     std::to_string(max_template_value_bytes) + " bytes",
                 at + "." + p.type);
  p.value = text(*value);
  const char* other = p.type == "text" ? "payload" : "text";
  if (member(v, other) != nullptr)
    return fault(at + " of type " + p.type + " has no " + other, at + "." + other);
  if (const auto* name = member(v, "parameter_name")) {
    if (p.type != "text" || !name->IsString() ||
        !is_identifier(text(*name), max_template_parameter_name_bytes))
      return fault(at + ".parameter_name must be [a-z0-9_]{1,64} on a text parameter",
                   at + ".parameter_name");
    p.parameter_name = text(*name);
  }
  return {};
}

// A button's position: 0 to 9, as a number or a one-digit string; -1 when it is anything else.
int button_index(const rapidjson::Value& v) {
  if (v.IsInt()) return v.GetInt() >= 0 && v.GetInt() <= 9 ? v.GetInt() : -1;
  if (v.IsString() && v.GetStringLength() == 1 && v.GetString()[0] >= '0' &&
      v.GetString()[0] <= '9')
    return v.GetString()[0] - '0';
  return -1;
}

template_fault read_component(const rapidjson::Value& v, const std::string& at,
                              template_component& c) {
  if (!v.IsObject()) return fault(at + " must be an object", at);
  const auto* type = member(v, "type");
  if (type == nullptr || !type->IsString() ||
      (text(*type) != "header" && text(*type) != "body" && text(*type) != "button"))
    return fault(at + ".type must be \"header\", \"body\" or \"button\"", at + ".type");
  if (unknown_member(v, {"type", "sub_type", "index", "parameters"}))
    return fault(at + " has a member other than type, sub_type, index, parameters", at);
  c.type = text(*type);
  const bool button = c.type == "button";
  const auto* sub_type = member(v, "sub_type");
  if (button != (sub_type != nullptr) ||
      (sub_type && (!sub_type->IsString() || !is_identifier(text(*sub_type), 32))))
    return fault(at + ".sub_type is required on a button ([a-z0-9_]{1,32}) and only there",
                 at + ".sub_type");
  if (sub_type) c.sub_type = text(*sub_type);
  const auto* index = member(v, "index");
  if (button != (index != nullptr) || (index && button_index(*index) < 0))
    return fault(at + ".index is required on a button (0 to 9) and only there", at + ".index");
  if (index) c.index = button_index(*index);
  if (const auto* parameters = member(v, "parameters")) {
    if (!parameters->IsArray() || parameters->Size() > max_template_parameters)
      return fault(
          at + ".parameters must be an array of at most " + std::to_string(max_template_parameters),
          at + ".parameters");
    c.parameters.resize(parameters->Size());
    for (rapidjson::SizeType i = 0; i < parameters->Size(); ++i) {
      auto f = read_parameter((*parameters)[i], at + ".parameters[" + std::to_string(i) + "]",
                              c.parameters[i]);
      if (!f.message.empty()) return f;
    }
  }
  return {};
}

void write_parameter(json::writer& w, const template_parameter& p) {
  w.StartObject();
  put(w, "type", p.type);
  put(w, p.type, p.value);
  if (!p.parameter_name.empty()) put(w, "parameter_name", p.parameter_name);
  w.EndObject();
}

}  // namespace

template_fault read_template(const rapidjson::Value& v, message_template& out) {
  if (!v.IsObject()) return fault("template must be an object", "template");
  if (unknown_member(v, {"name", "language", "components"}))
    return fault("template has a member other than name, language, components", "template");
  const auto* name = member(v, "name");
  if (name == nullptr || !name->IsString() || !is_identifier(text(*name), max_template_name_bytes))
    return fault("template.name must be [a-z0-9_]{1,512}", "template.name");
  out.name = text(*name);
  const auto* language = member(v, "language");
  if (language == nullptr || !language->IsString() || !is_language(text(*language)))
    return fault("template.language must be a language code like en or en_US", "template.language");
  out.language = text(*language);
  out.components.clear();
  if (const auto* components = member(v, "components")) {
    if (!components->IsArray() || components->Size() > max_template_components)
      return fault("template.components must be an array of at most " +
                       std::to_string(max_template_components),
                   "template.components");
    out.components.resize(components->Size());
    for (rapidjson::SizeType i = 0; i < components->Size(); ++i) {
      auto f = read_component((*components)[i], "template.components[" + std::to_string(i) + "]",
                              out.components[i]);
      if (!f.message.empty()) return f;
    }
  }
  return {};
}

void write_template_components(json::writer& w, const std::vector<template_component>& c) {
  w.StartArray();
  for (const auto& component : c) {
    w.StartObject();
    put(w, "type", component.type);
    if (!component.sub_type.empty()) put(w, "sub_type", component.sub_type);
    // Meta's examples give the index as a string.
    if (component.index >= 0)
      put(w, "index", std::string(1, static_cast<char>('0' + component.index)));
    w.Key("parameters");
    w.StartArray();
    for (const auto& p : component.parameters) write_parameter(w, p);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

void write_template(json::writer& w, const message_template& t) {
  w.StartObject();
  put(w, "name", t.name);
  put(w, "language", t.language);
  if (!t.components.empty()) {
    w.Key("components");
    write_template_components(w, t.components);
  }
  w.EndObject();
}

}  // namespace bellhop::channels
