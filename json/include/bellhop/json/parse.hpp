#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace bellhop::json {

// Every JSON text Bellhop did not write itself a moment ago (HTTP bodies, webhooks, WebSocket
// frames, elements read back from Redis, the config file) is parsed here and nowhere else:
//  - the text is refused above max_bytes before a byte of it is looked at;
//  - arrays and objects nest at most max_depth levels (the root is level 1), so no code that
//    walks the document (RapidJSON's own writer and copy included) recurses deeper than that;
//  - the parser itself is RapidJSON's iterative one: its stack is on the heap, whatever the
//    input;
//  - strings must be valid UTF-8 (no overlong forms, no surrogates, escaped ones included);
//  - numbers must fit a double ("2e308" is a syntax error, not an infinity no writer can write);
//  - exactly one value, nothing but whitespace after it.
struct limits {
  std::size_t max_bytes = 1024 * 1024;
  unsigned max_depth = 32;
  // The config file only: // and /* */ comments, and a trailing comma in arrays and objects.
  bool comments = false;
};

enum class error {
  none = 0,
  too_large,     // more than max_bytes
  too_deep,      // nested deeper than max_depth
  invalid_utf8,  // a string is not valid UTF-8
  syntax,        // anything else RapidJSON refuses (empty text included)
};

struct result {
  error code = error::none;
  std::size_t offset = 0;   // byte offset of the error in the text
  std::string_view detail;  // RapidJSON's words for a syntax error; static storage

  explicit operator bool() const { return code == error::none; }
  // One line for an error body or a log line; never quotes the input.
  std::string message() const;
};

// A short machine-readable name: "too_large", "too_deep", "invalid_utf8", "syntax".
std::string_view to_string(error e);

// Parses `text` into `doc` (replacing what it held). On failure `doc` is left null.
result parse(std::string_view text, rapidjson::Document& doc, const limits& lim = {});

}  // namespace bellhop::json
