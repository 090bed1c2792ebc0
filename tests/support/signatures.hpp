#pragma once

#include <filesystem>
#include <string>
#include <vector>

// Webhook signatures for tests that post signed webhooks, computed by Python's hmac (not by
// bellhop's own code), and the shell helpers they run on.
namespace bellhop::test {

// `s` as one /bin/sh word.
std::string shell_quote(const std::string& s);
// Runs `python3 -c code args...` and returns its stdout, trailing newlines trimmed.
std::string run_python(const std::string& code, const std::vector<std::string>& args);

// X-Hub-Signature-256 and X-Bellhop-Signature: "sha256=" + hex HMAC-SHA256 of the body. The
// body is written to a file in `dir` for Python to read (bytes, not an argument).
std::string hmac_sha256(const std::string& secret, const std::string& body,
                        const std::filesystem::path& dir);
// X-Twilio-Signature: base64(HMAC-SHA1(token, url + sorted name+value)) of a form body.
std::string twilio_signature(const std::string& token, const std::string& url,
                             const std::string& form, const std::filesystem::path& dir);

}  // namespace bellhop::test
