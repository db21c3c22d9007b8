#include "daemon/web_config.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "lib/util/text.h"

namespace ringwatch::daemon {
namespace {

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& field, const std::string& expectation) const {
    throw WebConfigError(source_ + ": " + field + ": " + expectation);
  }

  // The keys of a mapping, each one of `known`.
  void only(const YAML::Node& node, const std::string& field,
            const std::vector<std::string>& known) const {
    if (!node.IsMap()) fail(field.empty() ? "(top level)" : field, "expected a mapping");
    for (const auto& entry : node) {
      const auto key = entry.first.as<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        fail((field.empty() ? "" : field + ".") + key,
             "unknown field (expected one of: " + list + ")");
      }
    }
  }

  std::string string(const YAML::Node& node, const std::string& field) const {
    if (!node.IsScalar()) fail(field, "expected a string");
    return node.as<std::string>();
  }

  bool boolean(const YAML::Node& node, const std::string& field) const {
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      fail(field, "expected true or false");
    }
    return value;
  }

  // A path relative to the config file's directory.
  std::string path(const YAML::Node& node, const std::string& field) const {
    std::filesystem::path value(string(node, field));
    if (value.empty()) fail(field, "expected a path");
    if (value.is_relative()) value = std::filesystem::path(source_).parent_path() / value;
    return value.string();
  }

 private:
  std::string source_;
};

TlsOptions read_tls(const Reader& reader, const YAML::Node& node) {
  const std::string at = "tls_server_config";
  reader.only(node, at,
              {"cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version"});
  TlsOptions tls;
  for (const char* required : {"cert_file", "key_file"}) {
    if (!node[required]) reader.fail(at + "." + required, "missing required field");
  }
  tls.cert_file = reader.path(node["cert_file"], at + ".cert_file");
  tls.key_file = reader.path(node["key_file"], at + ".key_file");
  if (node["client_auth_type"]) {
    const auto type = reader.string(node["client_auth_type"], at + ".client_auth_type");
    if (type == "RequireAndVerifyClientCert") {
      tls.client_auth = ClientAuth::require_and_verify;
    } else if (type == "VerifyClientCertIfGiven") {
      tls.client_auth = ClientAuth::verify_if_given;
    } else if (type != "NoClientCert") {
      reader.fail(at + ".client_auth_type",
                  "expected NoClientCert, VerifyClientCertIfGiven or "
                  "RequireAndVerifyClientCert, got \"" +
                      type + "\"");
    }
  }
  if (node["client_ca_file"]) {
    tls.client_ca_file = reader.path(node["client_ca_file"], at + ".client_ca_file");
  } else if (tls.client_auth != ClientAuth::none) {
    reader.fail(at + ".client_ca_file",
                "missing required field (client_auth_type verifies client certificates)");
  }
  if (node["min_version"]) {
    const auto version = reader.string(node["min_version"], at + ".min_version");
    if (version != "TLS12" && version != "TLS13") {
      reader.fail(at + ".min_version", "expected TLS12 or TLS13, got \"" + version + "\"");
    }
    tls.tls13_only = version == "TLS13";
  }
  return tls;
}

bool bcrypt_hash(const std::string& hash) {
  return hash.size() == 60 &&
         (hash.starts_with("$2a$") || hash.starts_with("$2b$") || hash.starts_with("$2y$"));
}

std::string sha256(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof digest);
}

bool same(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

WebConfig parse_web_config(std::string_view yaml, const std::string& source_name) {
  const Reader reader(source_name);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& error) {
    throw WebConfigError(source_name + ": line " + std::to_string(error.mark.line + 1) +
                         ", column " + std::to_string(error.mark.column + 1) + ": " + error.msg);
  }
  WebConfig config;
  if (root.IsNull()) return config;  // an empty file: plain HTTP, no authentication
  reader.only(root, "", {"tls_server_config", "basic_auth_users", "healthz_without_auth"});
  if (root["tls_server_config"]) config.tls = read_tls(reader, root["tls_server_config"]);
  if (const auto users = root["basic_auth_users"]) {
    if (!users.IsMap()) reader.fail("basic_auth_users", "expected a mapping of user to hash");
    for (const auto& entry : users) {
      const auto user = entry.first.as<std::string>();
      const auto field = "basic_auth_users." + user;
      const auto hash = reader.string(entry.second, field);
      if (user.empty() || user.find(':') != std::string::npos) {
        reader.fail(field, "expected a user name without ':'");
      }
      if (!bcrypt_hash(hash)) reader.fail(field, "expected a bcrypt hash ($2a$, $2b$ or $2y$)");
      config.basic_auth_users[user] = hash;
    }
  }
  if (root["healthz_without_auth"]) {
    config.healthz_without_auth =
        reader.boolean(root["healthz_without_auth"], "healthz_without_auth");
  }
  return config;
}

WebConfig load_web_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw WebConfigError(path + ": cannot read the file");
  std::stringstream text;
  text << in.rdbuf();
  return parse_web_config(text.str(), path);
}

BasicAuth::BasicAuth(std::map<std::string, std::string> users, bool healthz_without_auth)
    : users_(std::move(users)), healthz_without_auth_(healthz_without_auth) {
  if (!users_.empty()) verifier_ = std::thread([this] { verify_loop(); });
}

BasicAuth::~BasicAuth() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (verifier_.joinable()) verifier_.join();
}

void BasicAuth::check(const HttpRequest& request, std::function<void(Verdict)> done) {
  if (users_.empty()) return done(Verdict::allowed);
  if (healthz_without_auth_) {
    const std::string path = request.target.substr(0, request.target.find('?'));
    if (path == "/healthz" || path == "/-/healthy") return done(Verdict::allowed);
  }
  constexpr std::string_view kScheme = "Basic ";
  if (!request.authorization.starts_with(kScheme)) return done(Verdict::denied);
  const auto decoded =
      util::base64_decode(std::string_view(request.authorization).substr(kScheme.size()));
  const auto colon = decoded ? decoded->find(':') : std::string::npos;
  if (colon == std::string::npos) return done(Verdict::denied);
  std::string user = decoded->substr(0, colon), password = decoded->substr(colon + 1);
  if (!users_.contains(user)) return done(Verdict::denied);
  {
    const std::lock_guard lock(mutex_);
    const auto known = verified_.find(user);
    if (known != verified_.end() && same(known->second, sha256(password))) {
      return done(Verdict::allowed);
    }
    if (pending_.size() >= kMaxPendingChecks || stopping_) return done(Verdict::busy);
    pending_.push_back({std::move(user), std::move(password), std::move(done)});
  }
  wake_.notify_one();
}

void BasicAuth::verify_loop() {
  auto data = std::make_unique<crypt_data>();
  for (;;) {
    Pending next;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
      if (stopping_) break;
      next = std::move(pending_.front());
      pending_.pop_front();
    }
    const std::string& hash = users_.at(next.user);
    const char* hashed = crypt_r(next.password.c_str(), hash.c_str(), data.get());
    const bool good = hashed != nullptr && same(hashed, hash);
    if (good) {
      const std::lock_guard lock(mutex_);
      verified_[next.user] = sha256(next.password);
    }
    next.done(good ? Verdict::allowed : Verdict::denied);
  }
  std::deque<Pending> abandoned;
  {
    const std::lock_guard lock(mutex_);
    abandoned.swap(pending_);
  }
  for (auto& pending : abandoned) pending.done(Verdict::busy);
}

HttpResponse BasicAuth::busy() {
  auto response = json_error(503, "too many password checks waiting");
  response.headers.emplace_back("Retry-After", "1");
  return response;
}

HttpResponse BasicAuth::challenge() {
  auto response = json_error(401, "authentication required");
  response.headers.emplace_back("WWW-Authenticate", "Basic realm=\"ringwatchd\"");
  return response;
}

}  // namespace ringwatch::daemon
