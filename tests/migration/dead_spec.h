#pragma once
// A cluster spec whose nodes listen nowhere (127.10.250.0/24 is not the
// lab's): every probe of it fails, fast. For engine tests whose checks must fail.

namespace ringwatch::testing {

inline constexpr char kDeadSpec[] = R"({
  "name": "dead",
  "proxies": [{"name": "p1", "kind": "twemproxy", "client": "127.10.250.1:1"}],
  "backends": [{"name": "b1", "address": "127.10.250.2", "port": 1, "dns_name": "b1.test",
                "expected_cidr": "127.10.0.0/16"}],
  "timeouts": {"connect_ms": 100, "io_ms": 200}
})";

}  // namespace ringwatch::testing
