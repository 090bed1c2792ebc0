#include "bellhop/json/parse.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cmath>

namespace bellhop::json {
namespace {

// Forwards RapidJSON's SAX events to the document being built and refuses the one that would
// open a container deeper than the limit (the reader then stops with kParseErrorTermination).
class depth_guard {
 public:
  depth_guard(rapidjson::Document& doc, unsigned max_depth) : doc_(doc), max_depth_(max_depth) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(std::int64_t i) { return doc_.Int64(i); }
  bool Uint64(std::uint64_t u) { return doc_.Uint64(u); }
  // RapidJSON turns some out-of-range numbers ("2e308") into infinity without an error; no
  // writer can write one back (RapidJSON's stops there and leaves half a document).
  bool Double(double d) {
    if (!std::isfinite(d)) {
      too_big_ = true;
      return false;
    }
    return doc_.Double(d);
  }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) {
    return no_surrogate(s, n) && doc_.String(s, n, copy);
  }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) {
    return no_surrogate(s, n) && doc_.Key(s, n, copy);
  }
  bool StartObject() { return open() && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType members) {
    --depth_;
    return doc_.EndObject(members);
  }
  bool StartArray() { return open() && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType elements) {
    --depth_;
    return doc_.EndArray(elements);
  }

  bool too_deep() const { return too_deep_; }
  bool surrogate() const { return surrogate_; }
  bool too_big() const { return too_big_; }

 private:
  // RapidJSON validates the bytes of the text, but decodes a lone low surrogate escape
  // ("\udc00") into the UTF-8 form of a surrogate (ED B0..BF xx), which is not UTF-8. Only an
  // escape can produce one: in the raw bytes it is refused before it gets here.
  bool no_surrogate(const char* s, rapidjson::SizeType n) {
    for (rapidjson::SizeType i = 0; i + 1 < n; ++i) {
      if (static_cast<unsigned char>(s[i]) == 0xED &&
          static_cast<unsigned char>(s[i + 1]) >= 0xA0) {
        surrogate_ = true;
        return false;
      }
    }
    return true;
  }

  bool open() {
    if (++depth_ > max_depth_) {
      too_deep_ = true;
      return false;
    }
    return true;
  }

  rapidjson::Document& doc_;
  const unsigned max_depth_;
  unsigned depth_ = 0;
  bool too_deep_ = false;
  bool surrogate_ = false;
  bool too_big_ = false;
};

template <unsigned Flags>
result run(std::string_view text, rapidjson::Document& doc, unsigned max_depth) {
  constexpr unsigned flags =
      Flags | rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;
  rapidjson::ParseResult parsed;
  bool too_deep = false, surrogate = false, too_big = false;
  auto generate = [&](rapidjson::Document& handler) {
    rapidjson::MemoryStream ms(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> is(ms);
    rapidjson::Reader reader;
    depth_guard guard(handler, max_depth);
    parsed = reader.Parse<flags>(is, guard);
    too_deep = guard.too_deep();
    surrogate = guard.surrogate();
    too_big = guard.too_big();
    return !parsed.IsError();
  };
  doc.SetNull();
  doc.Populate(generate);
  if (!parsed.IsError()) return {};
  doc.SetNull();
  result r;
  r.offset = parsed.Offset();
  if (too_deep) {
    r.code = error::too_deep;
  } else if (surrogate || parsed.Code() == rapidjson::kParseErrorStringInvalidEncoding) {
    r.code = error::invalid_utf8;
  } else {
    r.code = error::syntax;
    r.detail =
        rapidjson::GetParseError_En(too_big ? rapidjson::kParseErrorNumberTooBig : parsed.Code());
  }
  return r;
}

}  // namespace

std::string_view to_string(error e) {
  switch (e) {
    case error::none:
      return "none";
    case error::too_large:
      return "too_large";
    case error::too_deep:
      return "too_deep";
    case error::invalid_utf8:
      return "invalid_utf8";
    case error::syntax:
      return "syntax";
  }
  return "syntax";
}

std::string result::message() const {
  switch (code) {
    case error::none:
      return "valid JSON";
    case error::too_large:
      return "JSON text too large";
    case error::too_deep:
      return "JSON nested too deeply (at byte " + std::to_string(offset) + ")";
    case error::invalid_utf8:
      return "JSON string is not valid UTF-8 (at byte " + std::to_string(offset) + ")";
    case error::syntax:
      return "invalid JSON: " + std::string(detail) + " (at byte " + std::to_string(offset) + ")";
  }
  return "invalid JSON";
}

result parse(std::string_view text, rapidjson::Document& doc, const limits& lim) {
  if (text.size() > lim.max_bytes) {
    doc.SetNull();
    return {error::too_large, lim.max_bytes, {}};
  }
  if (lim.comments) {
    return run<rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag>(text, doc,
                                                                                    lim.max_depth);
  }
  return run<rapidjson::kParseNoFlags>(text, doc, lim.max_depth);
}

}  // namespace bellhop::json
