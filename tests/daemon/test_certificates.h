#pragma once
// Certificates for TLS tests, made by the openssl program in a temporary
// directory: a CA, a server certificate for 127.0.0.1 (and localhost)
// signed by it, a client certificate signed by it, and a second CA that
// signed nothing here. Removed with the object.
//
// Not thread-safe; one owner.

#include <crypt.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace ringwatch::testing {

class TestCertificates {
 public:
  TestCertificates() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "ringwatch-tls-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    std::ofstream(dir_ / "server.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    for (const char* ca : {"ca", "other-ca"}) {
      run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "
          "/CN=ringwatch-test-" +
          std::string(ca) + " -keyout " + file(std::string(ca) + ".key") + " -out " +
          file(std::string(ca) + ".crt"));
    }
    for (const char* leaf : {"server", "client"}) {
      const std::string name(leaf);
      run("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
          " -keyout " + file(name + ".key") + " -out " + file(name + ".csr"));
      run("x509 -req -days 2 -in " + file(name + ".csr") + " -CA " + file("ca.crt") + " -CAkey " +
          file("ca.key") + " -CAcreateserial -out " + file(name + ".crt") +
          (name == "server" ? " -extfile " + file("server.ext") : std::string()));
    }
  }
  ~TestCertificates() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  const std::filesystem::path& dir() const { return dir_; }

  // A bcrypt hash of `password` (libxcrypt), cost 10.
  static std::string bcrypt(const std::string& password) {
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$2b$", 10, nullptr, 0, salt, sizeof salt) == nullptr) {
      throw std::runtime_error("crypt_gensalt_rn failed");
    }
    crypt_data data{};
    const char* hash = crypt_r(password.c_str(), salt, &data);
    if (hash == nullptr || hash[0] == '*') throw std::runtime_error("crypt_r failed");
    return hash;
  }

 private:
  void run(const std::string& arguments) const {
    const std::string command = "openssl " + arguments + " >/dev/null 2>&1";
    if (std::system(command.c_str()) != 0) throw std::runtime_error("failed: " + command);
  }

  std::filesystem::path dir_;
};

}  // namespace ringwatch::testing
