#include "bellhop/channels/email.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <optional>
#include <vector>

#include "bellhop/contract/encoding.hpp"
#include "bellhop/json/write.hpp"
#include "json_webhook.hpp"
#include "text.hpp"

namespace bellhop::channels::email {
namespace {

using detail::iequals;
using detail::lower;
using detail::trim;
using json_writer = json::writer;

constexpr int max_json_depth = 16;
constexpr std::size_t max_line_bytes = 998;     // RFC 5322 2.1.1: a line, CRLF excluded
constexpr std::size_t fold_at = 78;             // RFC 5322 2.1.1: what a line "should" stay within
constexpr std::size_t max_address_bytes = 254;  // RFC 5321 4.5.3.1.3's path, less the brackets
// The guest's References go into the inbound metadata, which /v1/messages/inbound caps at 8 KiB
// next to a subject and two ids of up to 998 bytes each; older ids are dropped to fit.
constexpr std::size_t max_references_bytes = 4000;

bool has_line_break(std::string_view v) {
  return v.find_first_of("\r\n") != std::string_view::npos;
}

// Bytes no address or message id may hold: space and controls end a token in a header, and
// SMTP's MAIL FROM / RCPT TO would take them as the end of the path.
bool is_space_or_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= ' ' || u == 0x7f;
}

// ---- addresses -------------------------------------------------------------------------------

struct address {
  std::string addr;  // local@domain, lower-case
  std::string name;  // display name, "" if none
};

// local@domain with nothing SMTP or a header would trip on. The whole address is lower-cased:
// the guest's identity (and so their conversation) must not depend on how they typed it.
std::optional<std::string> bare_address(std::string_view v) {
  v = trim(v);
  const auto at = v.find('@');
  if (v.empty() || v.size() > max_address_bytes || at == std::string_view::npos || at == 0 ||
      at + 1 == v.size() || v.find('@', at + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  for (char c : v) {
    if (is_space_or_control(c) || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' ||
        c == '\\' || c == '(' || c == ')') {
      return std::nullopt;
    }
  }
  std::string out(v);
  for (auto& c : out) c = lower(c);
  return out;
}

// A quoted display name's text: the quotes off and its quoted-pairs (\" and \\) undone.
std::string unquoted(std::string_view name) {
  if (name.size() < 2 || name.front() != '"' || name.back() != '"') return std::string(name);
  name = name.substr(1, name.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\' && i + 1 < name.size()) ++i;
    out += name[i];
  }
  return out;
}

// "ana@x.example", "<ana@x.example>", "Ana Lima <ana@x.example>", "\"Lima, Ana\" <…>".
std::optional<address> parse_address(std::string_view v) {
  if (has_line_break(v)) return std::nullopt;
  v = trim(v);
  const auto open = v.rfind('<');
  if (open == std::string_view::npos) {
    auto a = bare_address(v);
    if (!a) return std::nullopt;
    return address{*a, ""};
  }
  if (v.back() != '>') return std::nullopt;
  auto a = bare_address(v.substr(open + 1, v.size() - open - 2));
  if (!a) return std::nullopt;
  return address{*a, unquoted(trim(v.substr(0, open)))};
}

// ---- message ids -----------------------------------------------------------------------------

// "<id>" whether it came with its angle brackets or without; nullopt when it is empty, holds
// a space, a control character or another bracket (References separates ids by spaces, so an id
// with one would become two), or would pass a header line's 998 bytes.
std::optional<std::string> message_id_of(std::string_view v) {
  v = trim(v);
  if (!v.empty() && v.front() == '<') v.remove_prefix(1);
  if (!v.empty() && v.back() == '>') v.remove_suffix(1);
  if (v.empty() || v.size() + 2 > max_line_bytes) return std::nullopt;
  for (char c : v)
    if (is_space_or_control(c) || c == '<' || c == '>') return std::nullopt;
  return "<" + std::string(v) + ">";
}

// The ids of a References (or In-Reply-To) text, "<a@x> <b@y>", "<a@x><b@y>" or bare "a@x b@y".
// Tokens that are no message id are skipped: they are threading hints, and a guest's email is
// not refused because their mail client wrote a broken one.
std::vector<std::string> message_ids_in(std::string_view v) {
  std::vector<std::string> ids;
  std::size_t i = 0;
  while (i < v.size()) {
    if (is_space_or_control(v[i])) {
      ++i;
      continue;
    }
    std::size_t end = i + 1;
    if (v[i] == '<') {
      while (end < v.size() && v[end] != '>' && !is_space_or_control(v[end])) ++end;
      if (end < v.size() && v[end] == '>') ++end;
    } else {
      while (end < v.size() && v[end] != '<' && !is_space_or_control(v[end])) ++end;
    }
    if (auto id = message_id_of(v.substr(i, end - i))) ids.push_back(std::move(*id));
    i = end;
  }
  return ids;
}

// The ids joined by spaces, within max_references_bytes: the first id (the thread's root) and
// as many of the latest as fit, the way mail clients shorten a long References.
std::string joined_references(const std::vector<std::string>& ids) {
  std::size_t total = 0;
  for (const auto& id : ids) total += id.size() + 1;
  if (total <= max_references_bytes + 1) {
    std::string out;
    for (const auto& id : ids) out += (out.empty() ? "" : " ") + id;
    return out;
  }
  std::size_t used = ids.front().size(), first_kept = ids.size();
  while (first_kept > 1 && used + 1 + ids[first_kept - 1].size() <= max_references_bytes)
    used += 1 + ids[--first_kept].size();
  std::string out = ids.front();
  for (std::size_t k = first_kept; k < ids.size(); ++k) out += " " + ids[k];
  return out;
}

// ---- the webhook -----------------------------------------------------------------------------

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string_view text_of(const rapidjson::Value& v) {
  return {v.GetString(), v.GetStringLength()};
}

// 2026-11-28T09:12:00Z, with an optional fraction and a Z or ±hh:mm offset (RFC 3339 5.6).
bool rfc3339(std::string_view v) {
  auto number = [&](std::size_t at, std::size_t n, int lo, int hi) {
    if (v.size() < at + n) return false;
    int x = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (v[i] < '0' || v[i] > '9') return false;
      x = x * 10 + (v[i] - '0');
    }
    return x >= lo && x <= hi;
  };
  if (v.size() < 20 || !number(0, 4, 0, 9999) || v[4] != '-' || !number(5, 2, 1, 12) ||
      v[7] != '-' || !number(8, 2, 1, 31) || (v[10] != 'T' && v[10] != 't') ||
      !number(11, 2, 0, 23) || v[13] != ':' || !number(14, 2, 0, 59) || v[16] != ':' ||
      !number(17, 2, 0, 60)) {  // 60: a leap second
    return false;
  }
  std::size_t i = 19;
  if (v[i] == '.') {
    const auto start = ++i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < v.size() && (v[i] == 'Z' || v[i] == 'z')) return i + 1 == v.size();
  return i + 6 == v.size() && (v[i] == '+' || v[i] == '-') && number(i + 1, 2, 0, 23) &&
         v[i + 3] == ':' && number(i + 4, 2, 0, 59);
}

// An attachment's kind from its MIME type (any case, parameters ignored).
std::string kind_of(std::string_view mime) {
  std::string type(trim(mime.substr(0, mime.find('/'))));
  for (auto& c : type) c = lower(c);
  return type == "image" || type == "audio" || type == "video" ? type : "document";
}

webhook_result missing(const std::string& field) {
  return webhook_result::refuse(422, "missing_field", field + " is required");
}
webhook_result invalid(const std::string& field, const std::string& why) {
  return webhook_result::refuse(422, "invalid_field", field + " " + why);
}

using json::write_string;

// The attachments array as guest_message.attachments_json (and how many), or the refusal;
// `first_kind` gets the first one's kind.
std::optional<webhook_result> write_attachments(const rapidjson::Value* list, std::string& out,
                                                std::size_t& count, std::string& first_kind) {
  rapidjson::StringBuffer buffer;
  json_writer w(buffer);
  w.StartArray();
  if (list != nullptr) {
    if (!list->IsArray()) return invalid("attachments", "must be an array");
    for (rapidjson::SizeType i = 0; i < list->Size(); ++i) {
      const auto& e = (*list)[i];
      const auto field = "attachments[" + std::to_string(i) + "]";
      if (!e.IsObject()) return invalid(field, "must be an object");
      const auto* name = member(e, "filename");
      const auto* mime = member(e, "content_type");
      const auto* url = member(e, "url");
      if (name != nullptr && !name->IsString())
        return invalid(field + ".filename", "must be a string");
      if (mime != nullptr && !mime->IsString())
        return invalid(field + ".content_type", "must be a string");
      if (url == nullptr || (url->IsString() && url->GetStringLength() == 0))
        return missing(field + ".url");
      if (!url->IsString()) return invalid(field + ".url", "must be a string");
      // Staff open these links from the dashboard: nothing but a web address is let through.
      const auto link = text_of(*url);
      if (!iequals(link.substr(0, 8), "https://") && !iequals(link.substr(0, 7), "http://"))
        return invalid(field + ".url", "must be an http(s) URL");
      const std::string mime_type = mime != nullptr && mime->GetStringLength() > 0
                                        ? std::string(text_of(*mime))
                                        : "application/octet-stream";
      const auto kind = kind_of(mime_type);
      if (first_kind.empty()) first_kind = kind;
      w.StartObject();
      w.Key("type");
      write_string(w, kind);
      w.Key("filename");
      if (name != nullptr)
        write_string(w, text_of(*name));
      else
        w.Null();
      w.Key("mime_type");
      write_string(w, mime_type);
      w.Key("url");
      write_string(w, link);
      w.EndObject();
      ++count;
    }
  }
  w.EndArray();
  out.assign(buffer.GetString(), buffer.GetSize());
  return std::nullopt;
}

// ---- the reply -------------------------------------------------------------------------------

// Header text that can go out as it is: printable ASCII and tabs, and nothing a reader would
// take for an RFC 2047 word ("=?").
bool plain_header_text(std::string_view v) {
  for (char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x7f || (u < ' ' && c != '\t')) return false;
  }
  return v.find("=?") == std::string_view::npos;
}

// RFC 2047 "B" encoded words of UTF-8 text, each at most 75 characters and never splitting a
// UTF-8 character (6.3: a word must decode on its own), joined by a fold (CRLF SP).
std::string encoded_words(std::string_view v) {
  // 42 bytes are 56 base64 characters, 68 with "=?UTF-8?B?" and "?=": after "Subject: " the
  // first line still ends by column 78.
  constexpr std::size_t max_raw = 42;
  std::string out;
  while (!v.empty()) {
    std::size_t n = std::min(max_raw, v.size());
    while (n < v.size() && n > 1 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + contract::to_base64(v.substr(0, n)) + "?=";
    v.remove_prefix(n);
  }
  return out;
}

// A display name as a header phrase: encoded when not plain ASCII, quoted when it holds
// RFC 5322 specials (a comma would otherwise split the From into two addresses).
std::string phrase(std::string_view name) {
  if (!plain_header_text(name)) return encoded_words(name);
  if (name.find_first_of("()<>[]:;@\\,.\"") == std::string_view::npos) return std::string(name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string unstructured(std::string_view v) {
  return plain_header_text(v) ? std::string(v) : encoded_words(v);
}

// One physical header line cut at its spaces so the pieces stay within 78 characters where
// they can (RFC 5322 2.2.3: a fold is CRLF put before a space, and unfolding removes just the
// CRLF, so the value is unchanged). `start` is where the value begins: a piece must hold some
// of it, since a line of nothing but spaces is not allowed. A run with no space stays long.
std::string fold(std::string_view line, std::size_t start) {
  std::string out;
  auto holds_text = [&](std::size_t at) {
    return at > start &&
           line.substr(start, at - start).find_first_not_of(" \t") != std::string_view::npos &&
           line.substr(at).find_first_not_of(" \t") != std::string_view::npos;
  };
  while (line.size() > fold_at) {
    std::size_t at = line.rfind(' ', fold_at);
    while (at != std::string_view::npos && !holds_text(at))
      at = at == 0 ? std::string_view::npos : line.rfind(' ', at - 1);
    if (at == std::string_view::npos) {  // no space early enough: the first one later
      at = line.find(' ', fold_at + 1);
      while (at != std::string_view::npos && !holds_text(at)) at = line.find(' ', at + 1);
      if (at == std::string_view::npos) break;
    }
    out.append(line.substr(0, at)).append("\r\n");
    line.remove_prefix(at);  // the space stays: it starts the next line
    start = 0;
  }
  out.append(line);
  return out;
}

// RFC 2045 6.7 quoted-printable: lines of at most 76 characters (a soft break "=" ends the
// longer ones), '=' and every byte outside printable ASCII as =XX, a space or tab before a line
// end encoded (transports strip trailing white space), and a '.' that starts a line. The
// text's line ends, LF or CRLF, become CRLF; a CR on its own is encoded.
std::string quoted_printable(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t column = 0;
  auto put = [&](std::string_view piece) {
    if (column + piece.size() > 75) {  // leaves room for the soft break's "="
      out += "=\r\n";
      column = 0;
    }
    // A line that is "." ends SMTP's DATA: dot-stuffing is the client's job (libcurl does it),
    // but a leading dot costs two bytes to take out of play altogether.
    if (column == 0 && piece == ".") piece = "=2E";
    out += piece;
    column += piece.size();
  };
  auto line_end_at = [&](std::size_t i) {
    return i == text.size() || text[i] == '\n' ||
           (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n');
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // its LF ends the line
    if (c == '\n') {
      out += "\r\n";
      column = 0;
      continue;
    }
    const bool plain =
        (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end_at(i + 1));
    if (plain) {
      const char one[1] = {static_cast<char>(c)};
      put(std::string_view(one, 1));
    } else {
      const char three[3] = {'=', hex[c >> 4], hex[c & 15]};
      put(std::string_view(three, 3));
    }
  }
  return out;
}

// The reply's text, and the links of its attachments under it: this adapter sends plain text
// only, and a guest who gets the words without the booking PDF they refer to is worse off than
// one who gets a link.
std::string body_of(const outbound_message& m) {
  std::string text = m.text;
  rapidjson::Document doc;
  if (json::parse(m.attachments_json, doc, detail::body_limits(max_json_depth)) && doc.IsArray()) {
    bool first = true;
    for (const auto& a : doc.GetArray()) {
      const auto* url = a.IsObject() ? member(a, "url") : nullptr;
      if (url == nullptr || !url->IsString() || url->GetStringLength() == 0) continue;
      const auto* name = member(a, "filename");
      if (!first)
        text += "\n";
      else if (!text.empty())  // a blank line between the text and the links
        text += text.back() == '\n' ? "\n" : "\n\n";
      first = false;
      if (name != nullptr && name->IsString() && name->GetStringLength() > 0)
        text.append(text_of(*name)).append(": ");
      text.append(text_of(*url));
    }
  }
  return text;
}

// The id's left-hand side and the domain: dot-atom-ish text (RFC 5322 3.6.4) with nothing that
// would end or break the <id@domain>.
bool id_part(std::string_view v) {
  return !v.empty() && std::none_of(v.begin(), v.end(), [](char c) {
    return is_space_or_control(c) || c == '<' || c == '>' || c == '@' ||
           static_cast<unsigned char>(c) >= 0x80;
  });
}

}  // namespace

std::string signature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static const unsigned char empty = 0;
  if (secret.size() > static_cast<std::size_t>(INT_MAX) ||
      HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           body.empty() ? &empty : reinterpret_cast<const unsigned char*>(body.data()), body.size(),
           mac, &len) == nullptr) {
    return "";
  }
  return "sha256=" + contract::to_hex({reinterpret_cast<const char*>(mac), len});
}

webhook_result parse_webhook(const settings& s, const webhook& w) {
  const auto* content_type = w.header("content-type");
  if (content_type == nullptr || !detail::is_json_content_type(*content_type)) {
    return webhook_result::refuse(415, "unsupported_media_type",
                                  "Content-Type must be application/json");
  }
  const auto* sig = w.header("x-bellhop-signature");
  if (sig == nullptr || !detail::hmac_sha256_header_valid(s.webhook_secret, w.body, *sig)) {
    return webhook_result::refuse(401, "invalid_signature",
                                  "X-Bellhop-Signature is missing or does not match the body");
  }
  rapidjson::Document doc;
  const auto parsed = json::parse(w.body, doc, detail::body_limits(max_json_depth));
  if (parsed.code == json::error::too_large)
    return webhook_result::refuse(413, "payload_too_large", parsed.message());
  if (!parsed || !doc.IsObject()) {
    return webhook_result::refuse(400, "malformed_json",
                                  parsed ? "the body must be one JSON object" : parsed.message());
  }

  // The string fields: absent or null is "", another type is refused (the first one named).
  std::string wrong;
  auto str = [&](const char* name) -> std::string {
    const auto* v = member(doc, name);
    if (v == nullptr) return "";
    if (!v->IsString()) {
      if (wrong.empty()) wrong = name;
      return "";
    }
    return std::string(text_of(*v));
  };
  const auto raw_id = str("message_id"), raw_from = str("from"), from_name = str("from_name"),
             raw_to = str("to"), subject = str("subject"), text = str("text"),
             in_reply_to = str("in_reply_to"), date = str("date");
  if (!wrong.empty()) return invalid(wrong, "must be a string");

  if (trim(raw_id).empty()) return missing("message_id");
  if (trim(raw_from).empty()) return missing("from");
  if (trim(raw_to).empty()) return missing("to");
  const auto id = message_id_of(raw_id);
  if (!id) return invalid("message_id", "must be one Message-ID of at most 998 bytes");
  const auto from = parse_address(raw_from);
  if (!from) return invalid("from", "is not an email address");
  const auto to = parse_address(raw_to);
  if (!to) return invalid("to", "is not an email address");
  // They reach the reply's headers (the subject) or the dashboards as one line.
  for (const auto& [name, value] : {std::pair{"subject", &subject}, {"from_name", &from_name}}) {
    if (has_line_break(*value) || value->size() > max_line_bytes)
      return invalid(name, "must be one line of at most 998 bytes");
  }

  std::vector<std::string> references;
  if (const auto* r = member(doc, "references")) {
    if (r->IsString()) {
      references = message_ids_in(text_of(*r));
    } else if (r->IsArray()) {
      for (const auto& e : r->GetArray()) {
        if (!e.IsString()) return invalid("references", "must be a string or an array of strings");
        for (auto& one : message_ids_in(text_of(e))) references.push_back(std::move(one));
      }
    } else {
      return invalid("references", "must be a string or an array of strings");
    }
  }
  const auto replied_to = message_ids_in(in_reply_to);

  guest_message g;
  std::string first_kind;
  if (auto refused = write_attachments(member(doc, "attachments"), g.attachments_json,
                                       g.attachment_count, first_kind))
    return std::move(*refused);
  if (text.empty() && first_kind.empty()) return missing("text (or an attachment)");

  rapidjson::StringBuffer meta;
  json_writer mw(meta);
  mw.StartObject();
  mw.Key("subject");  // always there, "" when the email had none: the reply reads it
  write_string(mw, subject);
  mw.Key("message_id");
  write_string(mw, *id);
  if (!replied_to.empty()) {
    mw.Key("in_reply_to");
    write_string(mw, replied_to.front());
  }
  if (!references.empty()) {
    mw.Key("references");
    write_string(mw, joined_references(references));
  }
  mw.EndObject();

  g.business = to->addr;
  g.channel = "email";
  g.external_id = *id;
  g.from = from->addr;
  g.to = to->addr;
  g.guest_name = std::string(trim(from_name.empty() ? from->name : from_name));
  g.text = text;
  g.content_type = text.empty() ? first_kind : "text";
  g.sent_at = rfc3339(date) ? date : "";
  g.metadata_json.assign(meta.GetString(), meta.GetSize());
  webhook_result r;
  r.messages.push_back(std::move(g));
  return r;
}

built_mail build_mail(const settings& s, const outbound_message& m, const thread_info& t,
                      std::string_view date) {
  built_mail out;
  auto refuse = [&](std::string why) {
    out.error = std::move(why);
    return out;
  };
  const auto from = bare_address(s.from_address);
  if (!from) return refuse("channels.email.from_address is not an email address");
  const auto to = parse_address(m.to);
  if (!to) return refuse("\"to\" is not an email address: " + m.to);
  const std::string domain =
      s.message_id_domain.empty() ? from->substr(from->find('@') + 1) : s.message_id_domain;
  if (!id_part(domain)) return refuse("the Message-ID domain is not usable: " + domain);
  if (!id_part(m.id)) return refuse("the message id is not usable in a Message-ID: " + m.id);

  std::string subject;
  if (auto it = m.extras.find("subject"); it != m.extras.end() && !trim(it->second).empty()) {
    subject = std::string(trim(it->second));
  } else if (const auto thread = trim(t.subject); !thread.empty()) {
    subject =
        iequals(thread.substr(0, 3), "re:") ? std::string(thread) : "Re: " + std::string(thread);
  } else {
    subject = "Your message";
  }
  // Header injection: a CR or LF in any of these would start a header (or the body) of its own.
  for (const auto& [what, v] : {std::pair{"the subject", std::string_view(subject)},
                                {"channels.email.from_name", s.from_name},
                                {"the thread's Message-ID", t.message_id},
                                {"the thread's References", t.references},
                                {"the Date", date}}) {
    if (has_line_break(v)) return refuse(std::string(what) + " holds a line break");
  }
  if (subject.size() > max_line_bytes) return refuse("the subject is longer than 998 bytes");

  std::string h;
  std::string too_long;
  auto header = [&](std::string_view name, std::string_view value) {
    const std::string line = std::string(name) + ": " + std::string(value);
    // Encoded words come folded already: each physical line is folded on its own.
    std::size_t begin = 0, start = name.size() + 1;
    while (true) {
      const auto end = line.find("\r\n", begin);
      const auto folded =
          fold(std::string_view(line).substr(begin, end == std::string::npos ? end : end - begin),
               start);
      for (std::size_t p = 0, q; p < folded.size(); p = q + 2) {
        q = folded.find("\r\n", p);
        if (q == std::string::npos) q = folded.size();
        if (q - p > max_line_bytes && too_long.empty()) too_long = std::string(name);
      }
      h += folded + "\r\n";
      if (end == std::string::npos) break;
      begin = end + 2;
      start = 0;
    }
  };
  const auto from_name = trim(s.from_name);
  header("From", from_name.empty() ? *from : phrase(from_name) + " <" + *from + ">");
  header("To", to->addr);
  header("Subject", unstructured(subject));
  header("Date", trim(date));
  out.m.message_id = "<" + m.id + "@" + domain + ">";
  header("Message-ID", out.m.message_id);
  // RFC 5322 3.6.4: the reply names the email it answers and extends its References, which is
  // what mail clients thread by.
  if (const auto parent = trim(t.message_id); !parent.empty()) {
    header("In-Reply-To", parent);
    const auto refs = trim(t.references);
    header("References",
           refs.empty() ? std::string(parent) : std::string(refs) + " " + std::string(parent));
  }
  header("MIME-Version", "1.0");
  header("Content-Type", "text/plain; charset=utf-8");
  header("Content-Transfer-Encoding", "quoted-printable");
  if (!too_long.empty()) return refuse("the " + too_long + " header is longer than 998 bytes");

  auto body = quoted_printable(body_of(m));
  if (body.size() < 2 || body.compare(body.size() - 2, 2, "\r\n") != 0) body += "\r\n";
  out.m.envelope_from = *from;
  out.m.envelope_to = to->addr;
  out.m.data = h + "\r\n" + body;
  out.ok = true;
  return out;
}

send_result interpret_send(int curl_code, long smtp_code, std::string_view error_text,
                           const std::string& message_id) {
  // CURLcode values (curl/curl.h), named here so channels/ does not depend on libcurl.
  constexpr int curle_ok = 0, curle_unsupported_protocol = 1, curle_url_malformat = 3,
                curle_ssl_certproblem = 58, curle_peer_failed_verification = 60,
                curle_use_ssl_failed = 64, curle_login_denied = 67, curle_ssl_cacert_badfile = 77,
                curle_auth_error = 94;
  send_result r;
  const bool smtp_4xx = smtp_code >= 400 && smtp_code < 500;
  const bool smtp_5xx = smtp_code >= 500 && smtp_code < 600;
  if (curl_code == curle_ok && (smtp_code == 0 || (smtp_code >= 200 && smtp_code < 300))) {
    r.outcome = send_outcome::sent;
    r.provider_message_id = message_id;
    return r;
  }
  // With a 4xx/5xx reply the server has said what it thinks, whatever libcurl made of it
  // (a refused MAIL FROM or RCPT TO comes back as one of several CURLcodes).
  auto server_said = [&](std::string_view otherwise) {
    return "SMTP " + std::to_string(smtp_code) + ": " +
           std::string(error_text.empty() ? otherwise : error_text);
  };
  auto curl_said = [&](std::string_view what) {
    std::string out(what);
    out += " (curl " + std::to_string(curl_code);
    if (!error_text.empty()) out += ": " + std::string(error_text);
    return out + ")";
  };
  if (smtp_4xx || smtp_5xx) r.error_code = std::to_string(smtp_code);
  // RFC 4954: 530 authentication required, 534 mechanism too weak, 535 credentials invalid,
  // 538 encryption required for the mechanism. A 454 (temporary failure) is a 4xx like any.
  const bool auth_reply =
      smtp_code == 530 || smtp_code == 534 || smtp_code == 535 || smtp_code == 538;
  if (smtp_4xx) {
    r.outcome = send_outcome::transient;
    r.reason = server_said("the mail server deferred the message");
  } else if (auth_reply) {
    r.outcome = send_outcome::permanent;
    r.reason = server_said("refused") +
               " (SMTP authentication failed: check smtp_username and smtp_password)";
  } else if (smtp_5xx) {
    r.outcome = send_outcome::permanent;
    r.reason = server_said("the mail server refused the message");
  } else if (curl_code == curle_login_denied || curl_code == curle_auth_error) {
    r.outcome = send_outcome::permanent;
    r.reason = curl_said("SMTP authentication failed: check smtp_username and smtp_password");
  } else if (curl_code == curle_use_ssl_failed) {
    r.outcome = send_outcome::permanent;
    r.reason = curl_said("the mail server offers no STARTTLS, and mail never goes in plain text");
  } else if (curl_code == curle_peer_failed_verification || curl_code == curle_ssl_cacert_badfile ||
             curl_code == curle_ssl_certproblem) {
    r.outcome = send_outcome::permanent;
    r.reason = curl_said("the mail server's certificate could not be verified");
  } else if (curl_code == curle_url_malformat || curl_code == curle_unsupported_protocol) {
    r.outcome = send_outcome::permanent;
    r.reason = curl_said("channels.email.smtp_url is not usable");
  } else {
    // No connection, DNS, timeouts, the TLS handshake, a dropped transfer, and what this table
    // does not know: another attempt costs little, a mail lost for good costs a guest.
    r.outcome = send_outcome::transient;
    r.reason = curl_said("the mail transfer failed");
  }
  return r;
}

}  // namespace bellhop::channels::email
