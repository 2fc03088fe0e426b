//===- Error.h - diagnostics ------------------------------------*- C++ -*-===//
//
// tessel reports every user-facing problem (a malformed model, a wrong input, an unsupported op)
// as a tessel::Error whose message names where (file, node, tensor) and what was expected.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace tessel {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string &msg) : std::runtime_error(msg) {}
};

/// Concatenates its arguments with operator<< into one string.
template <class... Args> std::string concat(Args &&...args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

/// Throws a tessel::Error whose message is the concatenation of the arguments.
template <class... Args> [[noreturn]] void fail(Args &&...args) {
  throw Error(concat(std::forward<Args>(args)...));
}

} // namespace tessel

/// Checks a condition on untrusted input; on failure throws tessel::Error with the message.
#define TESSEL_CHECK(cond, ...)                                                                    \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      ::tessel::fail(__VA_ARGS__);                                                                 \
  } while (0)
