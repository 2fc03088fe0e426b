//===- Tensor.h - dense tensors ---------------------------------*- C++ -*-===//
//
// A Tensor is a dtype, a shape and shared, contiguous row-major storage. Copies are shallow
// (they share storage); clone() makes a deep copy. Element counts and byte sizes are checked
// for overflow and against a limit on one allocation, so a hostile shape gets an Error, not a
// crash.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/DType.h"
#include "tessel/Support/Error.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace tessel {

/// The largest single tensor tessel allocates (bytes). Larger requests are an Error.
inline constexpr uint64_t kMaxTensorBytes = uint64_t(8) << 30;

/// Product of dims, checked: every dim >= 0, no overflow, and numel*elemSize <= kMaxTensorBytes.
/// `what` names the tensor in the error.
int64_t checkedNumel(const std::vector<int64_t> &shape, size_t elemSize, const std::string &what);

class Tensor {
public:
  Tensor() = default; // undefined: dtype() == DType::undefined
  /// Zero-initialized (strings empty).
  Tensor(DType dtype, std::vector<int64_t> shape);

  template <class T> static Tensor scalar(T v) {
    Tensor t(dtypeOf<T>, {});
    t.data<T>()[0] = v;
    return t;
  }
  template <class T> static Tensor fromVector(std::vector<int64_t> shape, const std::vector<T> &v) {
    Tensor t(dtypeOf<T>, std::move(shape));
    TESSEL_CHECK(int64_t(v.size()) == t.numel(), "Tensor::fromVector: ", v.size(),
                 " values for a shape of ", t.numel(), " elements");
    for (size_t i = 0; i < v.size(); ++i)
      t.data<T>()[i] = v[i];
    return t;
  }

  bool defined() const { return dtype_ != DType::undefined; }
  DType dtype() const { return dtype_; }
  const std::vector<int64_t> &shape() const { return shape_; }
  int64_t dim(int64_t i) const { return shape_.at(i); }
  int64_t rank() const { return int64_t(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return size_t(numel_) * dtypeSize(dtype_); }

  template <class T> T *data() {
    checkType(dtypeOf<T>);
    return static_cast<T *>(storage_.get());
  }
  template <class T> const T *data() const {
    checkType(dtypeOf<T>);
    return static_cast<const T *>(storage_.get());
  }
  void *raw() { return storage_.get(); }
  const void *raw() const { return storage_.get(); }

  /// Same storage, new shape with the same element count.
  Tensor reshaped(std::vector<int64_t> shape) const;
  Tensor clone() const;
  /// Element conversion with ONNX Cast semantics (float->int truncates, NaN->0 for ints, strings
  /// parse/print numbers, anything->bool is != 0).
  Tensor cast(DType to) const;

  /// Element i converted to double / int64 (numeric and bool tensors).
  double getDouble(int64_t i) const;
  int64_t getInt64(int64_t i) const;
  /// All elements as int64 (for shape-like inputs; any integer dtype).
  std::vector<int64_t> toInt64Vector() const;
  std::vector<double> toDoubleVector() const;

  /// Bitwise equality of dtype, shape and contents.
  bool equals(const Tensor &other) const;

  std::string shapeString() const; // "[2,3]"
  std::string typeString() const;  // "f32[2,3]"

private:
  void checkType(DType want) const;
  DType dtype_ = DType::undefined;
  std::vector<int64_t> shape_;
  int64_t numel_ = 0;
  std::shared_ptr<void> storage_;
};

std::string shapeToString(const std::vector<int64_t> &shape);

/// An element as a double (f16/bf16 through float).
template <class T> double elementToDouble(T v) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
    return double(float(v));
  else
    return double(v);
}

/// One element converted as Tensor::cast converts it: to bool is `!= 0`; float to integer
/// saturates, with NaN -> 0 (no undefined behaviour).
template <class To, class From> To convertElement(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return elementToDouble(v) != 0;
  } else if constexpr (std::is_same_v<To, Float16> || std::is_same_v<To, BFloat16>) {
    return To(float(elementToDouble(v)));
  } else if constexpr (std::is_floating_point_v<To>) {
    if constexpr (std::is_integral_v<From>)
      return To(v);
    else
      return To(elementToDouble(v));
  } else { // integer target
    if constexpr (std::is_integral_v<From>) {
      return To(v);
    } else {
      double d = elementToDouble(v);
      if (std::isnan(d))
        return To(0);
      // saturate out-of-range values rather than invoke UB
      if (d >= double(std::numeric_limits<To>::max()))
        return std::numeric_limits<To>::max();
      if (d <= double(std::numeric_limits<To>::lowest()))
        return std::numeric_limits<To>::lowest();
      return To(d);
    }
  }
}

/// Calls f(T{}) with T the C++ type of dtype; Float16/BFloat16 for f16/bf16, bool for boolean.
/// Errors (naming `what`) for string and undefined.
template <class F> decltype(auto) dispatchNumeric(DType dt, F &&f, const char *what = "tensor") {
  switch (dt) {
  case DType::f32: return f(float{});
  case DType::f16: return f(Float16{});
  case DType::bf16: return f(BFloat16{});
  case DType::f64: return f(double{});
  case DType::i8: return f(int8_t{});
  case DType::u8: return f(uint8_t{});
  case DType::i16: return f(int16_t{});
  case DType::u16: return f(uint16_t{});
  case DType::i32: return f(int32_t{});
  case DType::u32: return f(uint32_t{});
  case DType::i64: return f(int64_t{});
  case DType::u64: return f(uint64_t{});
  case DType::boolean: return f(bool{});
  default: fail(what, ": unsupported element type ", dtypeName(dt));
  }
}

/// Like dispatchNumeric but also accepts string (T = std::string): for ops that only move data.
template <class F> decltype(auto) dispatchAll(DType dt, F &&f, const char *what = "tensor") {
  if (dt == DType::string)
    return f(std::string{});
  return dispatchNumeric(dt, std::forward<F>(f), what);
}

/// Calls f(T{}) for float types only (f16, bf16, f32, f64).
template <class F> decltype(auto) dispatchFloat(DType dt, F &&f, const char *what = "tensor") {
  switch (dt) {
  case DType::f32: return f(float{});
  case DType::f16: return f(Float16{});
  case DType::bf16: return f(BFloat16{});
  case DType::f64: return f(double{});
  default: fail(what, ": expected a float element type, got ", dtypeName(dt));
  }
}

} // namespace tessel
