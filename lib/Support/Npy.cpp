#include "tessel/Support/Npy.h"

#include <cstring>
#include <fstream>
#include <sys/stat.h>

namespace tessel {

std::string readFile(const std::string &path, uint64_t maxBytes) {
  struct stat st;
  TESSEL_CHECK(::stat(path.c_str(), &st) == 0, path, ": cannot open file (", std::strerror(errno), ")");
  TESSEL_CHECK(S_ISREG(st.st_mode), path, ": not a regular file");
  TESSEL_CHECK(uint64_t(st.st_size) <= maxBytes, path, ": file is ", st.st_size,
               " bytes, over the limit of ", maxBytes);
  std::ifstream in(path, std::ios::binary);
  TESSEL_CHECK(in.good(), path, ": cannot open file");
  std::string data(size_t(st.st_size), '\0');
  in.read(data.data(), std::streamsize(data.size()));
  TESSEL_CHECK(in.gcount() == std::streamsize(data.size()), path, ": short read");
  return data;
}

namespace {
struct NpyType {
  const char *descr;
  DType dtype;
};
const NpyType kNpyTypes[] = {
    {"<f4", DType::f32}, {"<f8", DType::f64}, {"<f2", DType::f16}, {"|i1", DType::i8},
    {"|u1", DType::u8},  {"<i2", DType::i16}, {"<u2", DType::u16}, {"<i4", DType::i32},
    {"<u4", DType::u32}, {"<i8", DType::i64}, {"<u8", DType::u64}, {"|b1", DType::boolean},
};

std::string headerValue(const std::string &header, const std::string &key, const std::string &what) {
  size_t k = header.find("'" + key + "'");
  TESSEL_CHECK(k != std::string::npos, what, ": .npy header has no '", key, "' field");
  size_t colon = header.find(':', k);
  TESSEL_CHECK(colon != std::string::npos, what, ": malformed .npy header");
  size_t start = header.find_first_not_of(' ', colon + 1);
  TESSEL_CHECK(start != std::string::npos, what, ": malformed .npy header");
  if (header[start] == '(') {
    size_t end = header.find(')', start);
    TESSEL_CHECK(end != std::string::npos, what, ": malformed .npy shape");
    return header.substr(start, end - start + 1);
  }
  if (header[start] == '\'') {
    size_t end = header.find('\'', start + 1);
    TESSEL_CHECK(end != std::string::npos, what, ": malformed .npy header");
    return header.substr(start + 1, end - start - 1);
  }
  size_t end = header.find_first_of(",}", start);
  return header.substr(start, end - start);
}
} // namespace

Tensor parseNpy(const std::string &bytes, const std::string &what) {
  TESSEL_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, what,
               ": not a .npy file (bad magic)");
  int major = uint8_t(bytes[6]);
  size_t headerLen, offset;
  if (major == 1) {
    headerLen = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
    offset = 10;
  } else {
    TESSEL_CHECK(major == 2 || major == 3, what, ": unsupported .npy version ", major);
    TESSEL_CHECK(bytes.size() >= 12, what, ": truncated .npy header");
    headerLen = 0;
    for (int i = 0; i < 4; ++i)
      headerLen |= size_t(uint8_t(bytes[8 + i])) << (8 * i);
    offset = 12;
  }
  TESSEL_CHECK(headerLen <= bytes.size() - offset, what, ": truncated .npy header");
  std::string header = bytes.substr(offset, headerLen);
  offset += headerLen;
  std::string descr = headerValue(header, "descr", what);
  std::string order = headerValue(header, "fortran_order", what);
  TESSEL_CHECK(order.find("False") != std::string::npos, what,
               ": Fortran-order .npy arrays are not supported (save with np.ascontiguousarray)");
  std::string shapeStr = headerValue(header, "shape", what);
  std::vector<int64_t> shape;
  for (size_t i = 1; i < shapeStr.size();) {
    size_t j = shapeStr.find_first_of(",)", i);
    if (j == std::string::npos)
      break;
    std::string tok = shapeStr.substr(i, j - i);
    size_t a = tok.find_first_not_of(' ');
    if (a != std::string::npos) {
      tok = tok.substr(a);
      char *end = nullptr;
      long long d = std::strtoll(tok.c_str(), &end, 10);
      TESSEL_CHECK(end != tok.c_str() && d >= 0, what, ": bad dimension '", tok, "' in .npy shape ",
                   shapeStr);
      shape.push_back(d);
    }
    i = j + 1;
  }
  DType dt = DType::undefined;
  std::string d = descr;
  if (d.size() == 3 && d[0] == '=')
    d[0] = '<';
  for (auto &t : kNpyTypes)
    if (d == t.descr || (d.size() == 3 && d[0] == '<' && std::string("|") + d.substr(1) == t.descr))
      dt = t.dtype;
  TESSEL_CHECK(dt != DType::undefined, what, ": unsupported .npy dtype '", descr,
               "' (expected little-endian f2/f4/f8, i1..i8, u1..u8 or b1)");
  Tensor t(dt, shape);
  TESSEL_CHECK(bytes.size() - offset >= t.nbytes(), what, ": truncated .npy data: shape ",
               shapeToString(shape), " needs ", t.nbytes(), " bytes, file has ", bytes.size() - offset);
  std::memcpy(t.raw(), bytes.data() + offset, t.nbytes());
  return t;
}

Tensor readNpy(const std::string &path) { return parseNpy(readFile(path), path); }

void writeNpy(const std::string &path, const Tensor &t) {
  const char *descr = nullptr;
  for (auto &e : kNpyTypes)
    if (e.dtype == t.dtype())
      descr = e.descr;
  if (t.dtype() == DType::bf16)
    fail(path, ": bf16 has no .npy dtype; cast to f32 first");
  TESSEL_CHECK(descr, path, ": cannot write a ", dtypeName(t.dtype()), " tensor as .npy");
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i)
    shape += std::to_string(t.shape()[i]) + (t.shape().size() == 1 ? "," : (i + 1 < t.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': " + shape + ", }";
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(path, std::ios::binary);
  TESSEL_CHECK(out.good(), path, ": cannot open for writing");
  out.write("\x93NUMPY\x01\x00", 8);
  char len[2] = {char(header.size() & 0xff), char(header.size() >> 8)};
  out.write(len, 2);
  out.write(header.data(), std::streamsize(header.size()));
  out.write(static_cast<const char *>(t.raw()), std::streamsize(t.nbytes()));
  TESSEL_CHECK(out.good(), path, ": write failed");
}

} // namespace tessel
