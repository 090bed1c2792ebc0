#include "bellhop/channels/email.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <climits>
#include <optional>

#include "json_webhook.hpp"
#include "text.hpp"

namespace bellhop::channels::email {
namespace {

using detail::iequals;
using detail::lower;
using detail::trim;
using json_writer = rapidjson::Writer<rapidjson::StringBuffer>;

constexpr int max_json_depth = 16;
constexpr std::size_t max_header_bytes = 998;  // RFC 5322's line limit
constexpr std::size_t max_address_bytes = 254;  // RFC 5321's path limit, less the brackets

bool has_line_break(std::string_view v) { return v.find_first_of("\r\n") != std::string_view::npos; }

// ---- addresses -------------------------------------------------------------------------------

struct address {
  std::string addr;  // local@domain, the domain lower-cased
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
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || u == 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"' ||
        c == '\\' || c == '(' || c == ')') {
      return std::nullopt;
    }
  }
  std::string out(v);
  for (auto& c : out) c = lower(c);
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
  auto name = trim(v.substr(0, open));
  if (name.size() >= 2 && name.front() == '"' && name.back() == '"')
    name = name.substr(1, name.size() - 2);
  return address{*a, std::string(name)};
}

// ---- the webhook -----------------------------------------------------------------------------

const rapidjson::Value* member(const rapidjson::Value& obj, const char* name) {
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string_view text_of(const rapidjson::Value& v) { return {v.GetString(), v.GetStringLength()}; }

// "<id>" whatever form it came in; nullopt when it holds a line break or is too long.
std::optional<std::string> message_id_of(std::string_view v) {
  v = trim(v);
  if (v.empty() || has_line_break(v) || v.size() > max_header_bytes - 2) return std::nullopt;
  if (v.front() == '<' && v.back() == '>') return std::string(v);
  return "<" + std::string(v) + ">";
}

bool rfc3339(std::string_view v) {
  // 2026-11-28T09:12:00Z, with optional fraction and a Z or ±hh:mm offset.
  auto digits = [&](std::size_t at, std::size_t n) {
    if (v.size() < at + n) return false;
    for (std::size_t i = at; i < at + n; ++i)
      if (v[i] < '0' || v[i] > '9') return false;
    return true;
  };
  if (v.size() < 20 || !digits(0, 4) || v[4] != '-' || !digits(5, 2) || v[7] != '-' ||
      !digits(8, 2) || (v[10] != 'T' && v[10] != 't') || !digits(11, 2) || v[13] != ':' ||
      !digits(14, 2) || v[16] != ':' || !digits(17, 2)) {
    return false;
  }
  std::size_t i = 19;
  if (i < v.size() && v[i] == '.') {
    const auto start = ++i;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == start) return false;
  }
  if (i < v.size() && (v[i] == 'Z' || v[i] == 'z')) return i + 1 == v.size();
  return i + 6 == v.size() && (v[i] == '+' || v[i] == '-') && digits(i + 1, 2) &&
         v[i + 3] == ':' && digits(i + 4, 2);
}

std::string kind_of(std::string_view mime) {
  for (const char* kind : {"image", "audio", "video"})
    if (mime.starts_with(std::string(kind) + "/")) return kind;
  return "document";
}

webhook_result missing(const char* field) {
  return webhook_result::refuse(422, "missing_field", std::string(field) + " is required");
}
webhook_result invalid(const std::string& field, const std::string& why) {
  return webhook_result::refuse(422, "invalid_field", field + " " + why);
}

// ---- the reply -------------------------------------------------------------------------------

bool is_ascii(std::string_view v) {
  for (char c : v)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}

std::string base64(std::string_view v) {
  std::string out(4 * ((v.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(v.data()),
                                static_cast<int>(v.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// RFC 2047 "B" encoded words, each at most 75 characters and never splitting a UTF-8
// character, joined by a folding space (CRLF SP) when there are several.
std::string encoded_words(std::string_view v) {
  // 56 base64 characters + the 12 of "=?UTF-8?B?" "?=": a first word after "Subject: " ends
  // before column 78 too.
  constexpr std::size_t max_raw = 42;
  std::string out;
  while (!v.empty()) {
    std::size_t n = std::min(max_raw, v.size());
    while (n < v.size() && n > 0 && (static_cast<unsigned char>(v[n]) & 0xC0) == 0x80) --n;
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + base64(v.substr(0, n)) + "?=";
    v.remove_prefix(n);
  }
  return out;
}

// A display name as a header phrase: encoded when not ASCII, quoted when it has specials.
std::string phrase(std::string_view name) {
  if (!is_ascii(name)) return encoded_words(name);
  if (name.find_first_of("()<>[]:;@\\,.\"") == std::string_view::npos) return std::string(name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string unstructured(std::string_view v) {
  return is_ascii(v) ? std::string(v) : encoded_words(v);
}

// RFC 2045 quoted-printable: lines of at most 76 characters (soft breaks "=" at the end), '='
// and bytes outside printable ASCII as =XX, a space or tab at a line's end encoded; line ends
// (LF or CRLF in the text) become CRLF.
std::string quoted_printable(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t column = 0;
  auto put = [&](std::string_view piece) {
    if (column + piece.size() > 75) {  // room for the soft break's "="
      out += "=\r\n";
      column = 0;
    }
    out += piece;
    column += piece.size();
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') continue;  // the LF ends it
    if (c == '\n') {
      out += "\r\n";
      column = 0;
      continue;
    }
    const bool line_end = i + 1 == text.size() || text[i + 1] == '\n' ||
                          (text[i + 1] == '\r' && i + 2 < text.size() && text[i + 2] == '\n');
    const bool plain = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !line_end);
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

std::string domain_of(std::string_view addr) { return std::string(addr.substr(addr.find('@') + 1)); }

}  // namespace

std::string signature(std::string_view secret, std::string_view body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  static const unsigned char empty = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(std::min<std::size_t>(secret.size(), INT_MAX)),
       body.empty() ? &empty : reinterpret_cast<const unsigned char*>(body.data()), body.size(),
       mac, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "sha256=";
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
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
  if (!detail::nesting_within(w.body, max_json_depth)) {
    return webhook_result::refuse(400, "malformed_json", "JSON nested too deep");
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(w.body.data(), w.body.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return webhook_result::refuse(400, "malformed_json", "the body must be one JSON object");
  }

  // Optional strings: absent or null is "", another type is refused.
  std::string wrong;
  auto str = [&](const char* name) -> std::string {
    const auto* v = member(doc, name);
    if (!v) return "";
    if (!v->IsString()) {
      if (wrong.empty()) wrong = name;
      return "";
    }
    return std::string(text_of(*v));
  };
  const auto raw_id = str("message_id"), raw_from = str("from"), from_name = str("from_name"),
             raw_to = str("to"), subject = str("subject"), text = str("text"),
             raw_in_reply_to = str("in_reply_to"), date = str("date");
  if (!wrong.empty()) return invalid(wrong, "must be a string");

  if (raw_id.empty()) return missing("message_id");
  if (raw_from.empty()) return missing("from");
  if (raw_to.empty()) return missing("to");
  const auto id = message_id_of(raw_id);
  if (!id) return invalid("message_id", "must be one line of at most 996 bytes");
  const auto from = parse_address(raw_from);
  if (!from) return invalid("from", "is not an email address");
  const auto to = parse_address(raw_to);
  if (!to) return invalid("to", "is not an email address");
  for (const auto* f : {&subject, &from_name, &raw_in_reply_to}) {
    if (has_line_break(*f) || f->size() > max_header_bytes) {
      const char* name = f == &subject ? "subject" : f == &from_name ? "from_name" : "in_reply_to";
      return invalid(name, "must be one line of at most 998 bytes");
    }
  }

  // References: "<a> <b>" or ["<a>", "<b>"].
  std::string references;
  if (const auto* r = member(doc, "references")) {
    if (r->IsString()) {
      references = std::string(trim(text_of(*r)));
    } else if (r->IsArray()) {
      for (const auto& e : r->GetArray()) {
        if (!e.IsString()) return invalid("references", "must be a string or strings");
        auto one = message_id_of(text_of(e));
        if (!one) return invalid("references", "must be message ids");
        references += (references.empty() ? "" : " ") + *one;
      }
    } else {
      return invalid("references", "must be a string or an array of strings");
    }
    if (has_line_break(references) || references.size() > 8 * max_header_bytes)
      return invalid("references", "must be one line");
  }

  rapidjson::StringBuffer files;
  json_writer fw(files);
  std::string first_kind;
  std::size_t attachment_count = 0;
  fw.StartArray();
  if (const auto* a = member(doc, "attachments")) {
    if (!a->IsArray()) return invalid("attachments", "must be an array");
    for (const auto& e : a->GetArray()) {
      const auto* url = e.IsObject() ? member(e, "url") : nullptr;
      if (!url || !url->IsString() || url->GetStringLength() == 0)
        return invalid("attachments", "must be objects with a url");
      const auto* name = member(e, "filename");
      const auto* mime = member(e, "content_type");
      if ((name && !name->IsString()) || (mime && !mime->IsString()))
        return invalid("attachments", "filename and content_type must be strings");
      const std::string mime_type = mime ? std::string(text_of(*mime)) : "application/octet-stream";
      const auto kind = kind_of(mime_type);
      if (first_kind.empty()) first_kind = kind;
      fw.StartObject();
      fw.Key("type");
      fw.String(kind.c_str());
      fw.Key("filename");
      if (name)
        fw.String(name->GetString(), name->GetStringLength());
      else
        fw.Null();
      fw.Key("mime_type");
      fw.String(mime_type.data(), static_cast<rapidjson::SizeType>(mime_type.size()));
      fw.Key("url");
      fw.String(url->GetString(), url->GetStringLength());
      fw.EndObject();
      ++attachment_count;
    }
  }
  fw.EndArray();
  if (text.empty() && attachment_count == 0) {
    return webhook_result::refuse(422, "missing_field", "text or attachments is required");
  }

  rapidjson::StringBuffer meta;
  json_writer mw(meta);
  auto put = [&](const char* k, const std::string& v) {
    if (v.empty()) return;
    mw.Key(k);
    mw.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  mw.StartObject();
  put("subject", subject);
  put("message_id", *id);
  put("in_reply_to", raw_in_reply_to.empty() ? "" : message_id_of(raw_in_reply_to).value_or(""));
  put("references", references);
  mw.EndObject();

  guest_message g;
  g.business = to->addr;
  g.channel = "email";
  g.external_id = *id;
  g.from = from->addr;
  g.to = to->addr;
  g.guest_name = from_name.empty() ? from->name : from_name;
  g.text = text;
  g.content_type = text.empty() ? first_kind : "text";
  g.attachments_json.assign(files.GetString(), files.GetSize());
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
  std::string subject;
  if (auto it = m.extras.find("subject"); it != m.extras.end() && !it->second.empty()) {
    subject = it->second;
  } else if (!t.subject.empty()) {
    subject = iequals(trim(t.subject).substr(0, 3), "re:") ? t.subject : "Re: " + t.subject;
  } else {
    subject = "Your message";
  }
  for (const std::string* v : std::initializer_list<const std::string*>{
           &subject, &s.from_name, &t.message_id, &t.references, &m.id}) {
    if (has_line_break(*v)) return refuse("a header value holds a line break");
  }
  if (subject.size() > max_header_bytes) return refuse("the subject is longer than 998 bytes");
  const std::string domain = s.message_id_domain.empty() ? domain_of(*from) : s.message_id_domain;

  std::string h;
  auto header = [&](std::string_view name, const std::string& value) {
    h.append(name).append(": ").append(value).append("\r\n");
  };
  if (s.from_name.empty()) {
    header("From", *from);
  } else {  // folded before the address when the line would pass 78 characters
    const auto name = phrase(s.from_name);
    const auto last_line = name.substr(name.rfind('\n') == std::string::npos ? 0 : name.rfind('\n'));
    header("From", name + (6 + last_line.size() + from->size() + 3 > 78 ? "\r\n <" : " <") +
                       *from + ">");
  }
  header("To", to->addr);
  header("Subject", unstructured(subject));
  header("Date", std::string(date));
  out.m.message_id = "<" + m.id + "@" + domain + ">";
  header("Message-ID", out.m.message_id);
  if (!t.message_id.empty()) {
    header("In-Reply-To", t.message_id);
    const auto refs = std::string(trim(t.references));
    header("References", refs.empty() ? t.message_id : refs + " " + t.message_id);
  }
  header("MIME-Version", "1.0");
  header("Content-Type", "text/plain; charset=utf-8");
  header("Content-Transfer-Encoding", "quoted-printable");
  out.m.envelope_from = *from;
  out.m.envelope_to = to->addr;
  out.m.data = h + "\r\n" + quoted_printable(m.text) + "\r\n";
  out.ok = true;
  return out;
}

send_result interpret_send(int curl_code, long smtp_code, std::string_view error_text,
                           const std::string& message_id) {
  // CURLcode values (curl/curl.h), kept here so channels/ does not depend on libcurl.
  constexpr int ok = 0, unsupported_protocol = 1, url_malformat = 3, login_denied = 67,
                use_ssl_failed = 64, peer_failed_verification = 60, ssl_cacert_badfile = 77;
  send_result r;
  const std::string code = smtp_code > 0 ? std::to_string(smtp_code) : "";
  auto reason = [&](std::string_view what) {
    std::string out(what);
    if (!code.empty()) out += " (SMTP " + code + ")";
    if (!error_text.empty()) out += ": " + std::string(error_text);
    return out;
  };
  if (curl_code == ok && smtp_code < 400) {
    r.outcome = send_outcome::sent;
    r.provider_message_id = message_id;
    return r;
  }
  r.error_code = code;
  if (smtp_code == 535 || curl_code == login_denied) {
    r.outcome = send_outcome::permanent;
    r.reason = reason("SMTP authentication failed");
  } else if (smtp_code >= 500 && smtp_code < 600) {
    r.outcome = send_outcome::permanent;
    r.reason = reason("the mail server refused the message");
  } else if (smtp_code >= 400 && smtp_code < 500) {
    r.outcome = send_outcome::transient;
    r.reason = reason("the mail server deferred the message");
  } else if (curl_code == use_ssl_failed) {
    r.outcome = send_outcome::permanent;
    r.reason = reason("the mail server offers no STARTTLS; mail is never sent in plain text");
  } else if (curl_code == peer_failed_verification || curl_code == ssl_cacert_badfile) {
    r.outcome = send_outcome::permanent;
    r.reason = reason("the mail server's certificate could not be verified");
  } else if (curl_code == url_malformat || curl_code == unsupported_protocol) {
    r.outcome = send_outcome::permanent;
    r.reason = reason("channels.email.smtp_url is not usable");
  } else {
    r.outcome = send_outcome::transient;
    r.reason = reason("the mail transfer failed");
  }
  return r;
}

}  // namespace bellhop::channels::email
