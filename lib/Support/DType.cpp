#include "tessel/Support/DType.h"

#include <cmath>

namespace tessel {

uint16_t Float16::fromFloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) // inf or nan
    return uint16_t(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
  if (absx >= 0x477ff000) // rounds to >= 65520 -> inf
    return uint16_t(sign | 0x7c00);
  if (absx < 0x38800000) { // subnormal half (or zero)
    // value = absx as float; half subnormal unit = 2^-24
    float af;
    std::memcpy(&af, &absx, 4);
    float scaled = af * 16777216.0f; // / 2^-24
    uint32_t m = uint32_t(std::nearbyint(scaled)); // round half to even (default mode)
    return uint16_t(sign | m);
  }
  uint32_t exp = ((absx >> 23) - 127 + 15);
  uint32_t mant = absx & 0x7fffff;
  uint32_t h = (exp << 10) | (mant >> 13);
  uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
    ++h;
  return uint16_t(sign | h);
}

float Float16::toFloat(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {
      float f = std::ldexp(float(mant), -24);
      std::memcpy(&x, &f, 4);
      x |= sign;
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000 | (mant << 13);
  } else {
    x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t BFloat16::fromFloat(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000)
    return uint16_t((x >> 16) | 0x40);
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7fff + lsb;
  return uint16_t(x >> 16);
}

size_t dtypeSize(DType t) {
  switch (t) {
  case DType::f32: case DType::i32: case DType::u32: return 4;
  case DType::f16: case DType::bf16: case DType::i16: case DType::u16: return 2;
  case DType::f64: case DType::i64: case DType::u64: return 8;
  case DType::i8: case DType::u8: case DType::boolean: return 1;
  case DType::string: return sizeof(std::string);
  case DType::undefined: return 0;
  }
  return 0;
}

static const struct {
  DType t;
  const char *name;
  int onnx;
} kTypes[] = {
    {DType::f32, "f32", 1},  {DType::u8, "u8", 2},    {DType::i8, "i8", 3},
    {DType::u16, "u16", 4},  {DType::i16, "i16", 5},  {DType::i32, "i32", 6},
    {DType::i64, "i64", 7},  {DType::string, "str", 8}, {DType::boolean, "bool", 9},
    {DType::f16, "f16", 10}, {DType::f64, "f64", 11}, {DType::u32, "u32", 12},
    {DType::u64, "u64", 13}, {DType::bf16, "bf16", 16},
};

std::string_view dtypeName(DType t) {
  for (auto &e : kTypes)
    if (e.t == t)
      return e.name;
  return "undefined";
}

std::optional<DType> parseDType(std::string_view name) {
  for (auto &e : kTypes)
    if (name == e.name)
      return e.t;
  return std::nullopt;
}

bool isFloat(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16 || t == DType::f64;
}
bool isInteger(DType t) {
  switch (t) {
  case DType::i8: case DType::u8: case DType::i16: case DType::u16:
  case DType::i32: case DType::u32: case DType::i64: case DType::u64: return true;
  default: return false;
  }
}
bool isSigned(DType t) {
  return isFloat(t) || t == DType::i8 || t == DType::i16 || t == DType::i32 || t == DType::i64;
}

std::optional<DType> dtypeFromOnnx(int onnxType) {
  for (auto &e : kTypes)
    if (e.onnx == onnxType)
      return e.t;
  return std::nullopt;
}
int dtypeToOnnx(DType t) {
  for (auto &e : kTypes)
    if (e.t == t)
      return e.onnx;
  return 0;
}

} // namespace tessel
