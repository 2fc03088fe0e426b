#include "tessel/Support/Tensor.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <sstream>
#include <type_traits>

namespace tessel {

int64_t checkedNumel(const std::vector<int64_t> &shape, size_t elemSize, const std::string &what) {
  uint64_t n = 1;
  bool zero = false;
  for (int64_t d : shape) {
    TESSEL_CHECK(d >= 0, what, ": negative dimension ", d, " in shape ", shapeToString(shape));
    if (d == 0)
      zero = true;
  }
  if (zero)
    return 0;
  for (int64_t d : shape) {
    TESSEL_CHECK(uint64_t(d) <= kMaxTensorBytes && n <= kMaxTensorBytes / uint64_t(d), what,
                 ": shape ", shapeToString(shape), " has too many elements (limit ",
                 kMaxTensorBytes, " bytes per tensor)");
    n *= uint64_t(d);
  }
  TESSEL_CHECK(n * std::max<size_t>(elemSize, 1) <= kMaxTensorBytes, what, ": shape ",
               shapeToString(shape), " needs ", n * elemSize, " bytes, over the limit of ",
               kMaxTensorBytes, " bytes per tensor");
  return int64_t(n);
}

std::string shapeToString(const std::vector<int64_t> &shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i)
    os << (i ? "," : "") << shape[i];
  os << "]";
  return os.str();
}

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  TESSEL_CHECK(dtype != DType::undefined, "cannot create a tensor of undefined element type");
  numel_ = checkedNumel(shape_, dtypeSize(dtype), "tensor");
  if (dtype == DType::string) {
    storage_ = std::shared_ptr<void>(new std::string[std::max<int64_t>(numel_, 1)],
                                     [](void *p) { delete[] static_cast<std::string *>(p); });
    return;
  }
  size_t bytes = std::max<size_t>(nbytes(), 1);
  size_t rounded = (bytes + 63) / 64 * 64;
  void *p = std::aligned_alloc(64, rounded);
  TESSEL_CHECK(p, "out of memory allocating ", bytes, " bytes for tensor ", typeString());
  std::memset(p, 0, rounded);
  storage_ = std::shared_ptr<void>(p, [](void *q) { std::free(q); });
}

void Tensor::checkType(DType want) const {
  TESSEL_CHECK(dtype_ == want, "tensor of type ", dtypeName(dtype_), " accessed as ",
               dtypeName(want));
}

Tensor Tensor::reshaped(std::vector<int64_t> shape) const {
  Tensor t = *this;
  int64_t n = checkedNumel(shape, dtypeSize(dtype_), "reshape");
  TESSEL_CHECK(n == numel_, "cannot reshape ", typeString(), " to ", shapeToString(shape));
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::clone() const {
  if (!defined())
    return Tensor();
  Tensor t(dtype_, shape_);
  if (dtype_ == DType::string) {
    for (int64_t i = 0; i < numel_; ++i)
      t.data<std::string>()[i] = data<std::string>()[i];
  } else {
    std::memcpy(t.raw(), raw(), nbytes());
  }
  return t;
}

namespace {
template <class T> std::string numberToString(T v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v ? "1" : "0";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(v);
  } else {
    double d = elementToDouble(v);
    if (std::isnan(d))
      return "NaN";
    if (std::isinf(d))
      return d > 0 ? "INF" : "-INF";
    std::ostringstream os;
    os.precision(std::is_same_v<T, double> ? 17 : 9);
    os << d;
    return os.str();
  }
}

template <class T> T parseNumber(const std::string &s) {
  if constexpr (std::is_same_v<T, bool>) {
    return !(s == "0" || s == "false" || s == "False" || s.empty());
  } else if constexpr (std::is_integral_v<T>) {
    if constexpr (std::is_signed_v<T>)
      return T(std::strtoll(s.c_str(), nullptr, 10));
    else
      return T(std::strtoull(s.c_str(), nullptr, 10));
  } else {
    return T(float(std::strtod(s.c_str(), nullptr)));
  }
}
} // namespace

Tensor Tensor::cast(DType to) const {
  if (to == dtype_)
    return *this;
  Tensor out(to, shape_);
  if (dtype_ == DType::string) {
    const std::string *src = data<std::string>();
    dispatchNumeric(to, [&](auto tt) {
      using To = decltype(tt);
      To *dst = out.data<To>();
      for (int64_t i = 0; i < numel_; ++i) {
        if constexpr (std::is_same_v<To, Float16> || std::is_same_v<To, BFloat16>)
          dst[i] = To(float(std::strtod(src[i].c_str(), nullptr)));
        else if constexpr (std::is_floating_point_v<To>)
          dst[i] = To(std::strtod(src[i].c_str(), nullptr));
        else
          dst[i] = parseNumber<To>(src[i]);
      }
    });
    return out;
  }
  dispatchNumeric(dtype_, [&](auto ft) {
    using From = decltype(ft);
    const From *src = data<From>();
    if (to == DType::string) {
      std::string *dst = out.data<std::string>();
      for (int64_t i = 0; i < numel_; ++i)
        dst[i] = numberToString(src[i]);
      return;
    }
    dispatchNumeric(to, [&](auto tt) {
      using To = decltype(tt);
      To *dst = out.data<To>();
      for (int64_t i = 0; i < numel_; ++i)
        dst[i] = convertElement<To>(src[i]);
    });
  });
  return out;
}

double Tensor::getDouble(int64_t i) const {
  TESSEL_CHECK(i >= 0 && i < numel_, "tensor index ", i, " out of range for ", typeString());
  return dispatchNumeric(dtype_, [&](auto t) -> double {
    using T = decltype(t);
    return elementToDouble(data<T>()[i]);
  });
}

int64_t Tensor::getInt64(int64_t i) const {
  TESSEL_CHECK(i >= 0 && i < numel_, "tensor index ", i, " out of range for ", typeString());
  return dispatchNumeric(dtype_, [&](auto t) -> int64_t {
    using T = decltype(t);
    return convertElement<int64_t>(data<T>()[i]);
  });
}

std::vector<int64_t> Tensor::toInt64Vector() const {
  std::vector<int64_t> v(numel_);
  for (int64_t i = 0; i < numel_; ++i)
    v[i] = getInt64(i);
  return v;
}

std::vector<double> Tensor::toDoubleVector() const {
  std::vector<double> v(numel_);
  for (int64_t i = 0; i < numel_; ++i)
    v[i] = getDouble(i);
  return v;
}

bool Tensor::equals(const Tensor &o) const {
  if (dtype_ != o.dtype_ || shape_ != o.shape_)
    return false;
  if (!defined())
    return true;
  if (dtype_ == DType::string) {
    for (int64_t i = 0; i < numel_; ++i)
      if (data<std::string>()[i] != o.data<std::string>()[i])
        return false;
    return true;
  }
  return std::memcmp(raw(), o.raw(), nbytes()) == 0;
}

std::string Tensor::shapeString() const { return shapeToString(shape_); }
std::string Tensor::typeString() const {
  return std::string(dtypeName(dtype_)) + shapeToString(shape_);
}

} // namespace tessel
