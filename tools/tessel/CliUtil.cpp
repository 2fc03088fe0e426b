//===- CliUtil.cpp - helpers the tessel subcommands share -----------------===//
#include "CliUtil.h"

#include "tessel/Artifact/Writer.h"
#include "tessel/Support/Error.h"
#include "tessel/Support/Npy.h"

#include <algorithm>
#include <cstring>
#include <iostream>
#include <type_traits>

namespace tessel::cli {

DType dtypeOf(runtime::ElemType e) {
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::i16,
                  DType::i32, DType::i64, DType::u8, DType::u16, DType::u32, DType::u64,
                  DType::boolean}) {
    try {
      if (artifact::toElemType(d) == e)
        return d;
    } catch (const Error &) {
    }
  }
  fail("element type ", runtime::elemTypeName(uint32_t(e)), " has no tessel dtype");
}

Tensor randomTensor(DType dt, const std::vector<int64_t> &shape, std::mt19937 &rng) {
  Tensor r(dt, shape);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(0, 9);
  dispatchNumeric(dt, [&](auto z) {
    using T = decltype(z);
    T *p = r.data<T>();
    for (int64_t i = 0; i < r.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>)
        p[i] = ui(rng) & 1;
      else if constexpr (std::is_integral_v<T>)
        p[i] = T(ui(rng));
      else
        p[i] = T(uf(rng));
    }
  });
  return r;
}

std::map<std::string, Tensor> readInputSpecs(const std::vector<std::string> &specs,
                                             const std::vector<std::string> &names) {
  std::map<std::string, Tensor> given;
  for (const std::string &spec : specs) {
    size_t eq = spec.find('=');
    TESSEL_CHECK(eq != std::string::npos && eq > 0, "--input '", spec, "': expected NAME=FILE.npy");
    std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      std::string all;
      for (const std::string &n : names)
        all += (all.empty() ? "" : ", ") + n;
      fail("--input '", spec, "': the model has no input '", name, "'; its inputs are: ", all);
    }
    TESSEL_CHECK(!given.count(name), "--input '", spec, "': input '", name, "' is given twice");
    TESSEL_CHECK(!(file.size() > 3 && file.substr(file.size() - 3) == ".pb"), "--input '", spec,
                 "': expected a .npy file (.pb inputs are read only by `tessel run MODEL.onnx`)");
    given[name] = readNpy(file);
  }
  return given;
}

void checkInput(const std::string &name, const Tensor &t, DType dt,
                const std::vector<int64_t> &shape) {
  TESSEL_CHECK(t.shape() == shape, "input '", name, "': the file has shape ", shapeToString(t.shape()),
               ", the model expects ", shapeToString(shape));
  TESSEL_CHECK(t.dtype() == dt, "input '", name, "': the file holds ", dtypeName(t.dtype()),
               ", the model expects ", dtypeName(dt));
}

std::vector<runtime::HostTensor> compiledInputs(const runtime::Model &model,
                                                const std::vector<std::string> &specs,
                                                unsigned seed) {
  std::vector<std::string> names;
  for (const runtime::TensorDesc &d : model.inputs())
    names.push_back(d.name);
  std::map<std::string, Tensor> given = readInputSpecs(specs, names);
  std::mt19937 rng(seed);
  std::vector<runtime::HostTensor> inputs;
  for (const runtime::TensorDesc &d : model.inputs()) {
    DType dt = dtypeOf(d.dtype);
    Tensor t;
    if (auto it = given.find(d.name); it != given.end()) {
      t = it->second;
      checkInput(d.name, t, dt, d.shape);
    } else {
      t = randomTensor(dt, d.shape, rng);
      std::cout << "input " << d.name << ": random " << t.typeString() << "\n";
    }
    runtime::HostTensor h(d);
    std::memcpy(h.bytes.data(), t.raw(), h.bytes.size());
    inputs.push_back(std::move(h));
  }
  return inputs;
}

int64_t argmax(const Tensor &t) {
  int64_t best = 0;
  for (int64_t k = 1; k < t.numel(); ++k)
    if (t.getDouble(k) > t.getDouble(best))
      best = k;
  return best;
}

void AccuracyTally::add(const Tensor &scores, int64_t label, double inferenceMs) {
  int64_t best = argmax(scores);
  correct += best == label;
  ms += inferenceMs;
  if (printPredictions)
    std::cout << "image " << n << ": predicted " << best << ", label " << label
              << (best == label ? "" : "  <- wrong") << "\n";
  ++n;
}

int AccuracyTally::report(const std::string &engine, double minAccuracy) const {
  double acc = n ? double(correct) / double(n) : 0;
  std::cout << "accuracy: " << correct << "/" << n << " = " << acc * 100 << "%\n";
  std::cout << "latency: " << ms / double(std::max<int64_t>(n, 1)) << " ms per image (" << engine
            << ")\n";
  if (acc < minAccuracy) {
    std::cout << "accuracy below the required " << minAccuracy * 100 << "%\n";
    return 1;
  }
  return 0;
}

} // namespace tessel::cli
