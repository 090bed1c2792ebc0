#include "support/signatures.hpp"

#include <fstream>

#include "support/process.hpp"

namespace bellhop::test {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string run_python(const std::string& code, const std::vector<std::string>& args) {
  std::string cmd = "/usr/bin/python3 -c " + shell_quote(code);
  for (const auto& a : args) cmd += " " + shell_quote(a);
  return run_capture(cmd);
}

std::string hmac_sha256(const std::string& secret, const std::string& body,
                        const std::filesystem::path& dir) {
  const auto file = dir / "signed-body";
  std::ofstream(file, std::ios::binary) << body;
  return "sha256=" + run_python(
                         "import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), "
                         "open(sys.argv[2], 'rb').read(), hashlib.sha256).hexdigest())",
                         {secret, file.string()});
}

std::string twilio_signature(const std::string& token, const std::string& url,
                             const std::string& form, const std::filesystem::path& dir) {
  const auto file = dir / "signed-form";
  std::ofstream(file, std::ios::binary) << form;
  return run_python(
      "import hmac, hashlib, base64, sys, urllib.parse\n"
      "p = urllib.parse.parse_qsl(open(sys.argv[3]).read(), keep_blank_values=True)\n"
      "d = sys.argv[2] + ''.join(k + v for k, v in sorted(p))\n"
      "print(base64.b64encode(hmac.new(sys.argv[1].encode(), d.encode(), hashlib.sha1)"
      ".digest()).decode())",
      {token, url, file.string()});
}

}  // namespace bellhop::test
