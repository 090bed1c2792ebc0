#include "bellhop/channels/form.hpp"

#include <boost/throw_exception.hpp>
#include <stdexcept>

#include "bellhop/contract/encoding.hpp"

namespace bellhop::channels {
namespace {

bool unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Decodes `part`, which starts at `base` in the body (for the error offset).
bool decode(std::string_view part, std::size_t base, std::string& out, form_error& error) {
  out.clear();
  out.reserve(part.size());
  for (std::size_t i = 0; i < part.size(); ++i) {
    const char c = part[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c != '%') {
      out.push_back(c);
    } else {
      const auto byte = contract::from_hex(part.substr(i + 1, 2));
      if (!byte || byte->size() != 1) {
        error.offset = base + i;
        error.message = "invalid percent-escape at offset " + std::to_string(base + i);
        return false;
      }
      out.push_back(byte->front());
      i += 2;
    }
  }
  return true;
}

}  // namespace

boost::system::result<form_fields, form_error> parse_form(std::string_view body) {
  form_fields fields;
  form_error error;
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = body.find('&', start);
    if (end == std::string_view::npos) end = body.size();
    const auto piece = body.substr(start, end - start);
    if (!piece.empty()) {
      const auto eq = piece.find('=');
      const auto name = piece.substr(0, eq);
      const auto value = eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1);
      std::string n, v;
      if (!decode(name, start, n, error) ||
          !decode(value, start + (eq == std::string_view::npos ? 0 : eq + 1), v, error)) {
        return error;
      }
      fields.emplace_back(std::move(n), std::move(v));
    }
    start = end + 1;
  }
  return fields;
}

const std::string* form_value(const form_fields& fields, std::string_view name) {
  for (const auto& [n, v] : fields) {
    if (n == name) return &v;
  }
  return nullptr;
}

std::string form_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0x0F]);
    }
  }
  return out;
}

std::string encode_form(const form_fields& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty()) out.push_back('&');
    out += form_encode(name);
    out.push_back('=');
    out += form_encode(value);
  }
  return out;
}

void throw_exception_from_error(const form_error& e, const boost::source_location& loc) {
  boost::throw_with_location(std::invalid_argument(e.message), loc);
}

}  // namespace bellhop::channels
