//===- TensorTest.cpp - Tensor, Float16 and BFloat16 basics -------------------===//
#include "tessel/Support/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

using namespace tessel;

namespace {

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float fromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

const DType kNumeric[] = {DType::f32, DType::f16, DType::bf16, DType::f64, DType::i8,
                          DType::u8,  DType::i16, DType::u16,  DType::i32, DType::u32,
                          DType::i64, DType::u64, DType::boolean};

/// A tensor of `dt` holding {0, 1, 2, 100} (bool: {0, 1, 1, 1}).
Tensor sample(DType dt) {
  Tensor t(dt, {4});
  const double vals[] = {0, 1, 2, 100};
  dispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    for (int i = 0; i < 4; ++i) {
      if constexpr (std::is_same_v<T, bool>)
        t.data<T>()[i] = vals[i] != 0;
      else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
        t.data<T>()[i] = T(float(vals[i]));
      else
        t.data<T>()[i] = T(vals[i]);
    }
  });
  return t;
}

//===----------------------------------------------------------------------===//
// Float16
//===----------------------------------------------------------------------===//

TEST(Float16, ExactValues) {
  EXPECT_EQ(Float16::fromFloat(1.0f), 0x3c00);
  EXPECT_EQ(Float16::fromFloat(-2.0f), 0xc000);
  EXPECT_EQ(Float16::fromFloat(0.0f), 0x0000);
  EXPECT_EQ(Float16::fromFloat(-0.0f), 0x8000);
  EXPECT_EQ(Float16::fromFloat(65504.0f), 0x7bff);            // largest finite
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1.0f, -14)), 0x0400); // smallest normal
  EXPECT_EQ(Float16::toFloat(0x3555), 0.333251953125f);
}

TEST(Float16, Subnormals) {
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1.0f, -24)), 0x0001); // smallest subnormal
  EXPECT_EQ(Float16::toFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1023.0f, -24)), 0x03ff); // largest subnormal
  EXPECT_EQ(Float16::toFloat(0x03ff), std::ldexp(1023.0f, -24));
  EXPECT_EQ(Float16::fromFloat(-std::ldexp(5.0f, -24)), 0x8005);
  // Halfway cases round to even; below half the smallest subnormal is zero.
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1.0f, -25)), 0x0000);  // 0.5 ulp -> 0 (even)
  EXPECT_EQ(Float16::fromFloat(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 ulp -> 2
  EXPECT_EQ(Float16::fromFloat(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 ulp -> 2
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1.0f, -25) * 1.0001f), 0x0001); // just above half
  // The largest subnormal rounds up into the smallest normal.
  EXPECT_EQ(Float16::fromFloat(std::ldexp(1023.5f, -24)), 0x0400);
  EXPECT_EQ(Float16::fromFloat(1e-10f), 0x0000);
}

TEST(Float16, InfNaNAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(Float16::fromFloat(inf), 0x7c00);
  EXPECT_EQ(Float16::fromFloat(-inf), 0xfc00);
  EXPECT_EQ(Float16::fromFloat(65520.0f), 0x7c00);     // halfway to 65536: ties to even -> inf
  EXPECT_EQ(Float16::fromFloat(65519.996f), 0x7bff);   // just below the halfway point
  EXPECT_EQ(Float16::fromFloat(1e10f), 0x7c00);
  EXPECT_EQ(Float16::fromFloat(-1e10f), 0xfc00);
  uint16_t n = Float16::fromFloat(std::nanf(""));
  EXPECT_EQ(n & 0x7c00, 0x7c00);
  EXPECT_NE(n & 0x03ff, 0);
  // A NaN whose payload lives only in the low float bits stays a NaN (never becomes inf).
  uint16_t lowPayload = Float16::fromFloat(fromBits(0x7f800001));
  EXPECT_EQ(lowPayload & 0x7c00, 0x7c00);
  EXPECT_NE(lowPayload & 0x03ff, 0);
  EXPECT_TRUE(std::isinf(Float16::toFloat(0x7c00)));
  EXPECT_TRUE(std::isnan(Float16::toFloat(0x7e00)));
  EXPECT_TRUE(std::signbit(Float16::toFloat(0xfe00)));
}

TEST(Float16, RoundToNearestEven) {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
  EXPECT_EQ(Float16::fromFloat(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  // 1 + 3*2^-11 is halfway between 1+2^-10 (odd) and 1+2^-9 (even).
  EXPECT_EQ(Float16::fromFloat(1.0f + std::ldexp(3.0f, -11)), 0x3c02);
  EXPECT_EQ(Float16::fromFloat(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);
  EXPECT_EQ(Float16::fromFloat(1.0f + std::ldexp(1.0f, -12)), 0x3c00);
  // Mantissa carry into the exponent: 2 - 2^-12 rounds up to 2.
  EXPECT_EQ(Float16::fromFloat(2.0f - std::ldexp(1.0f, -12)), 0x4000);
  EXPECT_EQ(Float16::fromFloat(0.1f), 0x2e66);
}

TEST(Float16, EveryBitPatternRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = Float16::toFloat(uint16_t(h));
    bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      ASSERT_TRUE(std::isnan(Float16::toFloat(Float16::fromFloat(f)))) << std::hex << h;
      continue;
    }
    ASSERT_EQ(Float16::fromFloat(f), h) << std::hex << h;
  }
}

//===----------------------------------------------------------------------===//
// BFloat16
//===----------------------------------------------------------------------===//

TEST(BFloat16, RoundingAndSpecials) {
  EXPECT_EQ(BFloat16::fromFloat(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x3f808000)), 0x3f80); // tie -> even (down)
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x3f818000)), 0x3f82); // tie -> even (up)
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x3f808001)), 0x3f81); // above half
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x3f807fff)), 0x3f80); // below half
  EXPECT_EQ(BFloat16::fromFloat(-0.0f), 0x8000);
  EXPECT_EQ(BFloat16::fromFloat(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(BFloat16::fromFloat(-std::numeric_limits<float>::infinity()), 0xff80);
  EXPECT_EQ(BFloat16::fromFloat(std::numeric_limits<float>::max()), 0x7f80); // overflows to inf
  // Subnormal floats keep their top bits.
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x00010000)), 0x0001);
  EXPECT_EQ(BFloat16::fromFloat(fromBits(0x00018000)), 0x0002);
  // NaNs stay NaN, including one whose payload is only in the low bits; the sign is kept.
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    uint16_t b = BFloat16::fromFloat(fromBits(bits));
    EXPECT_TRUE(std::isnan(BFloat16::toFloat(b))) << std::hex << bits;
    EXPECT_EQ(b >> 15, bits >> 31);
  }
}

TEST(BFloat16, EveryBitPatternRoundTrips) {
  for (uint32_t b = 0; b < 0x10000; ++b) {
    float f = BFloat16::toFloat(uint16_t(b));
    EXPECT_EQ(bitsOf(f), b << 16);
    if (std::isnan(f))
      continue;
    ASSERT_EQ(BFloat16::fromFloat(f), b) << std::hex << b;
  }
}

//===----------------------------------------------------------------------===//
// Tensor
//===----------------------------------------------------------------------===//

TEST(Tensor, CheckedNumel) {
  EXPECT_EQ(checkedNumel({2, 3, 4}, 4, "t"), 24);
  EXPECT_EQ(checkedNumel({}, 4, "t"), 1);
  EXPECT_EQ(checkedNumel({0, int64_t(1) << 62, int64_t(1) << 62}, 4, "t"), 0); // empty, no overflow
  EXPECT_THROW(checkedNumel({int64_t(1) << 32, int64_t(1) << 32}, 1, "t"), Error); // overflows
  EXPECT_THROW(checkedNumel({std::numeric_limits<int64_t>::max(), 2}, 1, "t"), Error);
  EXPECT_THROW(checkedNumel({int64_t(1) << 31, 2}, 4, "t"), Error); // 8 GiB + ... over the limit
  EXPECT_NO_THROW(checkedNumel({int64_t(1) << 31}, 4, "t"));       // exactly 8 GiB
  try {
    checkedNumel({2, -1}, 4, "weight 'w'");
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("weight 'w': negative dimension -1"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Tensor(DType::f32, {int64_t(1) << 40}), Error);
  EXPECT_THROW(Tensor(DType::undefined, {1}), Error);
}

TEST(Tensor, BasicsAndReshape) {
  Tensor t(DType::f32, {2, 3});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.typeString(), "f32[2,3]");
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(t.data<float>()[i], 0.0f); // zero-initialized
  EXPECT_THROW(t.data<int32_t>(), Error);
  Tensor r = t.reshaped({3, 2});
  EXPECT_EQ(r.shapeString(), "[3,2]");
  r.data<float>()[5] = 7; // shares storage
  EXPECT_EQ(t.data<float>()[5], 7.0f);
  EXPECT_THROW(t.reshaped({4, 2}), Error);
  EXPECT_THROW(t.reshaped({-6}), Error);
  EXPECT_EQ(t.reshaped({6}).rank(), 1);
  Tensor c = t.clone();
  c.data<float>()[5] = 8;
  EXPECT_EQ(t.data<float>()[5], 7.0f);
  Tensor s = Tensor::scalar<int64_t>(-3);
  EXPECT_EQ(s.rank(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.getInt64(0), -3);
  EXPECT_THROW(s.getInt64(1), Error);
  Tensor e(DType::i32, {0, 5});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.toInt64Vector().empty());
  EXPECT_THROW(Tensor::fromVector<float>({2}, {1, 2, 3}), Error);
}

TEST(Tensor, Equals) {
  Tensor a = Tensor::fromVector<float>({2}, {1, 2});
  EXPECT_TRUE(a.equals(Tensor::fromVector<float>({2}, {1, 2})));
  EXPECT_FALSE(a.equals(Tensor::fromVector<float>({2}, {1, 3})));
  EXPECT_FALSE(a.equals(Tensor::fromVector<float>({1, 2}, {1, 2})));   // shape
  EXPECT_FALSE(a.equals(Tensor::fromVector<double>({2}, {1, 2})));     // dtype
  EXPECT_FALSE(Tensor::fromVector<float>({1}, {0.0f}).equals(Tensor::fromVector<float>({1}, {-0.0f})));
  Tensor n = Tensor::fromVector<float>({1}, {std::nanf("")});
  EXPECT_TRUE(n.equals(n.clone())); // bitwise
  EXPECT_TRUE(Tensor().equals(Tensor()));
  EXPECT_FALSE(a.equals(Tensor()));
  Tensor s1 = Tensor::fromVector<std::string>({2}, {"a", "b"});
  EXPECT_TRUE(s1.equals(s1.clone()));
  EXPECT_FALSE(s1.equals(Tensor::fromVector<std::string>({2}, {"a", "c"})));
}

TEST(Tensor, CastBetweenAllNumericPairs) {
  for (DType from : kNumeric) {
    Tensor src = sample(from);
    for (DType to : kNumeric) {
      SCOPED_TRACE(std::string(dtypeName(from)) + " -> " + std::string(dtypeName(to)));
      Tensor dst = src.cast(to);
      ASSERT_EQ(dst.dtype(), to);
      ASSERT_EQ(dst.shape(), src.shape());
      for (int i = 0; i < 4; ++i) {
        double want = src.getDouble(i);
        if (to == DType::boolean)
          want = want != 0;
        EXPECT_EQ(dst.getDouble(i), want) << "element " << i;
      }
      // ... and back, when the values survive the trip.
      if (from != DType::boolean && to != DType::boolean) {
        EXPECT_TRUE(dst.cast(from).equals(src));
      }
    }
    // Through strings and back.
    Tensor str = src.cast(DType::string);
    EXPECT_TRUE(str.cast(from).equals(src)) << dtypeName(from);
  }
}

TEST(Tensor, CastSemantics) {
  // float -> int truncates toward zero; NaN -> 0; out of range saturates.
  Tensor f = Tensor::fromVector<float>({6}, {2.7f, -2.7f, std::nanf(""), 1e10f, -1e10f, 255.9f});
  Tensor i = f.cast(DType::i32);
  EXPECT_EQ(i.toInt64Vector(), (std::vector<int64_t>{2, -2, 0, 2147483647, -2147483648LL, 255}));
  EXPECT_EQ(f.cast(DType::u8).getInt64(5), 255);
  // Rounding to f16/bf16 is to nearest even.
  Tensor g = Tensor::fromVector<float>({2}, {1.0f + std::ldexp(1.0f, -11), 1.0f + std::ldexp(3.0f, -11)});
  Tensor h = g.cast(DType::f16);
  EXPECT_EQ(h.data<Float16>()[0].bits, 0x3c00);
  EXPECT_EQ(h.data<Float16>()[1].bits, 0x3c02);
  Tensor b = Tensor::fromVector<float>({1}, {fromBits(0x3f818000)}).cast(DType::bf16);
  EXPECT_EQ(b.data<BFloat16>()[0].bits, 0x3f82);
  // f16 <-> bf16 goes through float: 65504 is not a bf16 value, it rounds to 65536.
  Tensor big = Tensor::fromVector<float>({1}, {65504.0f}).cast(DType::f16).cast(DType::bf16);
  EXPECT_EQ(float(big.data<BFloat16>()[0]), 65536.0f);
  // f64 -> f32 rounds; i64 -> f32 rounds to the nearest representable.
  EXPECT_EQ(Tensor::fromVector<double>({1}, {0.1}).cast(DType::f32).data<float>()[0], 0.1f);
  EXPECT_EQ(Tensor::fromVector<int64_t>({1}, {16777217}).cast(DType::f32).data<float>()[0],
            16777216.0f);
  // Anything -> bool is != 0; bool -> numbers is 0/1.
  Tensor bl = Tensor::fromVector<float>({3}, {0.0f, -0.5f, std::nanf("")}).cast(DType::boolean);
  EXPECT_EQ(bl.data<bool>()[0], false);
  EXPECT_EQ(bl.data<bool>()[1], true);
  // Strings parse and print numbers.
  Tensor s = Tensor::fromVector<std::string>({3}, {"1.5", "-2", "1e3"});
  EXPECT_EQ(s.cast(DType::f32).toDoubleVector(), (std::vector<double>{1.5, -2, 1000}));
  EXPECT_EQ(Tensor::fromVector<float>({1}, {0.25f}).cast(DType::string).data<std::string>()[0], "0.25");
  EXPECT_EQ(Tensor::fromVector<std::string>({2}, {"0", "false"}).cast(DType::boolean).toInt64Vector(),
            (std::vector<int64_t>{0, 0}));
  // Casting to the same type shares the tensor.
  EXPECT_EQ(f.cast(DType::f32).raw(), f.raw());
}

} // namespace
