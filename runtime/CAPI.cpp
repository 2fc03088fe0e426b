//===- CAPI.cpp - the C API (tessel.h) over tessel::runtime::Model --------===//
//
// Every entry point catches everything: a C caller sees -1 and tessel_last_error(), never an
// exception or an abort.
//
//===----------------------------------------------------------------------===//

#include "tessel/runtime/tessel.h"

#include "tessel/runtime/Model.h"
#include "tessel/Support/Error.h"

#include <exception>
#include <new>
#include <string>
#include <vector>

struct tessel_model {
  explicit tessel_model(tessel::runtime::Model m) : model(std::move(m)) {}
  tessel::runtime::Model model;
};

namespace {

thread_local std::string tlsError;

template <class Fn> int guarded(Fn &&fn) {
  try {
    tlsError.clear();
    fn();
    return 0;
  } catch (const std::bad_alloc &) {
    tlsError = "out of memory";
  } catch (const std::exception &e) {
    tlsError = e.what();
  } catch (...) {
    tlsError = "unknown error";
  }
  return -1;
}

std::vector<tessel::runtime::TensorArg> toArgs(const tessel_tensor *t, size_t n,
                                               const char *role) {
  if (!t && n)
    tessel::fail("tessel_run: ", role, "s is NULL but num_", role, "s is ", n);
  std::vector<tessel::runtime::TensorArg> args;
  args.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (!t[i].name)
      tessel::fail("tessel_run: ", role, " ", i, " has a NULL name");
    if (t[i].rank < 0)
      tessel::fail("tessel_run: ", role, " '", t[i].name, "' has rank ", t[i].rank);
    args.push_back({t[i].name, tessel::runtime::ElemType(uint32_t(t[i].dtype)), t[i].shape,
                    size_t(t[i].rank), t[i].data, t[i].size_bytes});
  }
  return args;
}

int describeTensor(const std::vector<tessel::runtime::TensorDesc> &v, size_t index,
                   const char *role, tessel_tensor *info) {
  return guarded([&] {
    if (!info)
      tessel::fail("tessel_", role, "_info: info is NULL");
    if (index >= v.size())
      tessel::fail("tessel_", role, "_info: index ", index, " is out of range: the model has ",
                   v.size(), " ", role, "s");
    const tessel::runtime::TensorDesc &d = v[index];
    info->name = d.name.c_str();
    info->dtype = int32_t(d.dtype);
    info->rank = int32_t(d.shape.size());
    info->shape = d.shape.data();
    info->data = nullptr;
    info->size_bytes = tessel::runtime::byteSize(d);
  });
}

} // namespace

extern "C" {

int tessel_load(const char *path, tessel_model **out) {
  return guarded([&] {
    if (!out)
      tessel::fail("tessel_load: out is NULL");
    *out = nullptr;
    if (!path)
      tessel::fail("tessel_load: path is NULL");
    *out = new tessel_model(tessel::runtime::Model::load(path));
  });
}

int tessel_load_from_memory(const void *data, size_t size, tessel_model **out) {
  return guarded([&] {
    if (!out)
      tessel::fail("tessel_load_from_memory: out is NULL");
    *out = nullptr;
    *out = new tessel_model(tessel::runtime::Model::loadFromMemory(data, size));
  });
}

void tessel_free(tessel_model *model) { delete model; }

int tessel_run(const tessel_model *model, const tessel_tensor *inputs, size_t num_inputs,
               const tessel_tensor *outputs, size_t num_outputs) {
  return guarded([&] {
    if (!model)
      tessel::fail("tessel_run: model is NULL");
    std::vector<tessel::runtime::TensorArg> in = toArgs(inputs, num_inputs, "input");
    std::vector<tessel::runtime::TensorArg> out = toArgs(outputs, num_outputs, "output");
    model->model.run(in.data(), in.size(), out.data(), out.size());
  });
}

int tessel_run_dynamic(const tessel_model *model, const tessel_tensor *inputs, size_t num_inputs,
                       const tessel_tensor *outputs, size_t num_outputs,
                       int64_t *const *output_shapes) {
  return guarded([&] {
    if (!model)
      tessel::fail("tessel_run_dynamic: model is NULL");
    if (!output_shapes && num_outputs)
      tessel::fail("tessel_run_dynamic: output_shapes is NULL but num_outputs is ", num_outputs);
    std::vector<tessel::runtime::TensorArg> in = toArgs(inputs, num_inputs, "input");
    std::vector<tessel::runtime::TensorArg> out = toArgs(outputs, num_outputs, "output");
    for (size_t i = 0; i < num_outputs; ++i)
      if (!output_shapes[i] && out[i].rank)
        tessel::fail("tessel_run_dynamic: output_shapes[", i, "] (output '", out[i].name,
                     "') is NULL; expected room for ", out[i].rank, " dims");
    std::vector<std::vector<int64_t>> shapes;
    model->model.run(in.data(), in.size(), out.data(), out.size(), nullptr, &shapes);
    for (size_t i = 0; i < num_outputs; ++i)
      for (size_t d = 0; d < shapes[i].size(); ++d)
        output_shapes[i][d] = shapes[i][d];
  });
}

int64_t tessel_output_dynamic_axis(const tessel_model *model, size_t index) {
  if (!model)
    return -1;
  for (const tessel::runtime::DynamicOutput &d : model->model.dynamicOutputs())
    if (d.output == index)
      return int64_t(d.axis);
  return -1;
}

const char *tessel_last_error(void) { return tlsError.c_str(); }

size_t tessel_num_inputs(const tessel_model *model) {
  return model ? model->model.inputs().size() : 0;
}

size_t tessel_num_outputs(const tessel_model *model) {
  return model ? model->model.outputs().size() : 0;
}

int tessel_input_info(const tessel_model *model, size_t index, tessel_tensor *info) {
  if (!model)
    return guarded([] { tessel::fail("tessel_input_info: model is NULL"); });
  return describeTensor(model->model.inputs(), index, "input", info);
}

int tessel_output_info(const tessel_model *model, size_t index, tessel_tensor *info) {
  if (!model)
    return guarded([] { tessel::fail("tessel_output_info: model is NULL"); });
  return describeTensor(model->model.outputs(), index, "output", info);
}

const char *tessel_model_info(const tessel_model *model, const char *key) {
  if (!model || !key)
    return nullptr;
  const std::string *v = model->model.info(key);
  return v ? v->c_str() : nullptr;
}

const char *tessel_dtype_name(int32_t dtype) {
  return dtype < 0 ? "invalid" : tessel::runtime::elemTypeName(uint32_t(dtype));
}

} // extern "C"
