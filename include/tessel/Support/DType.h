//===- DType.h - element types ----------------------------------*- C++ -*-===//
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace tessel {

enum class DType : uint8_t {
  undefined,
  f32,
  f16,
  bf16,
  f64,
  i8,
  u8,
  i16,
  u16,
  i32,
  u32,
  i64,
  u64,
  boolean,
  string,
};

/// IEEE binary16, stored as bits; arithmetic goes through float.
struct Float16 {
  uint16_t bits = 0;
  Float16() = default;
  Float16(float f) : bits(fromFloat(f)) {}
  operator float() const { return toFloat(bits); }
  static uint16_t fromFloat(float f);
  static float toFloat(uint16_t h);
};

/// bfloat16 (the top half of an f32), stored as bits; arithmetic goes through float.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  BFloat16(float f) : bits(fromFloat(f)) {}
  operator float() const { return toFloat(bits); }
  static uint16_t fromFloat(float f); // round to nearest even, NaN preserved
  static float toFloat(uint16_t b) {
    uint32_t u = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

size_t dtypeSize(DType t); // bytes per element; sizeof(std::string) for string
std::string_view dtypeName(DType t);
std::optional<DType> parseDType(std::string_view name);
bool isFloat(DType t);   // f16, bf16, f32, f64
bool isInteger(DType t); // signed or unsigned integer (not bool)
bool isSigned(DType t);  // signed integer or float

/// ONNX TensorProto.DataType <-> DType; std::nullopt when tessel does not support it.
std::optional<DType> dtypeFromOnnx(int onnxType);
int dtypeToOnnx(DType t);

template <class T> struct DTypeOf;
template <> struct DTypeOf<float> { static constexpr DType value = DType::f32; };
template <> struct DTypeOf<Float16> { static constexpr DType value = DType::f16; };
template <> struct DTypeOf<BFloat16> { static constexpr DType value = DType::bf16; };
template <> struct DTypeOf<double> { static constexpr DType value = DType::f64; };
template <> struct DTypeOf<int8_t> { static constexpr DType value = DType::i8; };
template <> struct DTypeOf<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct DTypeOf<int16_t> { static constexpr DType value = DType::i16; };
template <> struct DTypeOf<uint16_t> { static constexpr DType value = DType::u16; };
template <> struct DTypeOf<int32_t> { static constexpr DType value = DType::i32; };
template <> struct DTypeOf<uint32_t> { static constexpr DType value = DType::u32; };
template <> struct DTypeOf<int64_t> { static constexpr DType value = DType::i64; };
template <> struct DTypeOf<uint64_t> { static constexpr DType value = DType::u64; };
template <> struct DTypeOf<bool> { static constexpr DType value = DType::boolean; };
template <> struct DTypeOf<std::string> { static constexpr DType value = DType::string; };
template <class T> inline constexpr DType dtypeOf = DTypeOf<T>::value;

} // namespace tessel
