// The libtorch switches tch does not expose: bf16 autocast (tch's autocast is CUDA fp16
// only), deterministic algorithms, cuDNN benchmark and TF32, and a warning handler that
// prints each distinct warning once (C++ libtorch does not deduplicate: a deterministic
// alert would otherwise print on every backward); and reading the tensors of a file
// torch.save wrote (torchvision's weights) without Python. Each entry point catches C++
// exceptions and returns them as a message, since unwinding through Rust is undefined.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <ATen/ops/_foreach_add.h>
#include <ATen/ops/_foreach_addcdiv.h>
#include <ATen/ops/_foreach_addcmul.h>
#include <ATen/ops/_foreach_div.h>
#include <ATen/ops/_foreach_lerp.h>
#include <ATen/ops/_foreach_mul.h>
#include <ATen/ops/_foreach_norm.h>
#include <ATen/ops/_foreach_sqrt.h>
#include <ATen/ops/_foreach_sub.h>
#include <ATen/ops/stack.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/unpickler.h>
#include <algorithm>
#include <vector>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>

namespace {
char last_error[512];

int fail_with(const char* msg) {
  std::strncpy(last_error, msg, sizeof(last_error) - 1);
  return 1;
}

// libtorch's own errors (c10::Error) without the C++ stack trace their what() carries.
int fail(const std::exception& e) {
  auto* c10_error = dynamic_cast<const c10::Error*>(&e);
  return fail_with(c10_error ? c10_error->what_without_backtrace() : e.what());
}

at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }

// Counts every warning by message and lets the default handler print the first of each.
class OnceHandler : public c10::WarningHandler {
 public:
  void process(const c10::Warning& w) override {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (counts[w.msg()]++ > 0) return;
    }
    c10::WarningHandler::process(w);
  }
  std::mutex mutex;
  std::map<std::string, long> counts;
};

OnceHandler once;

// tch's tensors are `at::Tensor*` behind opaque pointers; copies share their storage.
std::vector<at::Tensor> tensors(void* const* p, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; i++) v.push_back(*static_cast<at::Tensor*>(p[i]));
  return v;
}

// What a pickled value is, in Python's words, for messages.
std::string python_kind(const c10::IValue& v) {
  if (v.isNone()) return "None";
  if (v.isBool()) return "a bool";
  if (v.isInt()) return "an int";
  if (v.isDouble()) return "a float";
  if (v.isString()) return "a string";
  if (v.isList()) return "a list";
  if (v.isTuple()) return "a tuple";
  if (v.isGenericDict()) return "a dict";
  if (v.isTensor()) return "a tensor";
  return "a " + v.tagKind();
}

std::vector<at::Scalar> scalars(const double* p, size_t n) { return std::vector<at::Scalar>(p, p + n); }
}  // namespace

extern "C" {
const char* runner_ext_last_error() { return last_error; }

int runner_ext_set_deterministic(int on, int warn_only) {
  try {
    at::globalContext().setDeterministicAlgorithms(on != 0, warn_only != 0);
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int runner_ext_deterministic() { return at::globalContext().deterministicAlgorithms() ? 1 : 0; }

// Filling fresh tensors with NaN makes reads of uninitialised memory reproducible, at a cost.
void runner_ext_set_fill_uninitialized(int on) { at::globalContext().setDeterministicFillUninitializedMemory(on != 0); }

void runner_ext_set_cudnn_benchmark(int on) { at::globalContext().setBenchmarkCuDNN(on != 0); }

// TF32 (10-bit mantissa) tensor-core math for float32 convolutions and matmuls on CUDA.
void runner_ext_set_tf32(int on) {
  at::globalContext().setAllowTF32CuDNN(on != 0);
  at::globalContext().setAllowTF32CuBLAS(on != 0);
}

int runner_ext_tf32() { return at::globalContext().allowTF32CuDNN() ? 1 : 0; }

// Installs the print-once handler for the calling thread (libtorch's handler is per
// thread; autograd replays its workers' warnings on the thread that called backward).
void runner_ext_warn_once() { c10::WarningUtils::set_warning_handler(&once); }

// The warnings seen so far as "count US message RS" records (ASCII unit/record separators) into `buf` (NUL-terminated,
// truncated to `len`); returns the length the whole text needs.
size_t runner_ext_warnings(char* buf, size_t len) {
  std::string text;
  {
    std::lock_guard<std::mutex> lock(once.mutex);
    for (const auto& [msg, n] : once.counts) text += std::to_string(n) + "\x1f" + msg + "\x1e";
  }
  if (len > 0) {
    size_t n = std::min(len - 1, text.size());
    std::memcpy(buf, text.data(), n);
    buf[n] = 0;
  }
  return text.size();
}

// fastai's Adam step over n parameters as multi-tensor (foreach) ops: a few fused kernels
// per group on CUDA instead of about ten per parameter, and on the CPU the very ops, in the
// same order, as the per-parameter loop it replaces (same numbers). `decayed` (n_decayed
// weights) are first multiplied by `decay` (1 - lr * wd); `step_size[i]` = -lr / debias1,
// `debias2_sqrt[i]` = sqrt(debias2) of parameter i's step count.
int runner_ext_adam_step(void* const* ws, void* const* grads, void* const* avgs, void* const* sqs, size_t n, void* const* decayed, size_t n_decayed,
                         double decay, const double* step_size, const double* debias2_sqrt, double mom, double sqr_mom, double eps) {
  try {
    c10::AutoGradMode no_grad(false);
    auto w = tensors(ws, n), g = tensors(grads, n), a = tensors(avgs, n), s = tensors(sqs, n);
    if (n_decayed > 0) at::_foreach_mul_(tensors(decayed, n_decayed), decay);
    at::_foreach_lerp_(a, g, 1.0 - mom);
    at::_foreach_mul_(s, sqr_mom);
    at::_foreach_addcmul_(s, g, at::_foreach_mul(g, 1.0 - sqr_mom));
    auto denom = at::_foreach_sqrt(s);
    at::_foreach_div_(denom, scalars(debias2_sqrt, n));
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(w, at::_foreach_mul(a, scalars(step_size, n)), denom);
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// SGD with momentum, foreach as above: avg = mom * avg + g; w -= lr * avg.
int runner_ext_sgd_step(void* const* ws, void* const* grads, void* const* avgs, size_t n, void* const* decayed, size_t n_decayed, double decay, double lr,
                        double mom) {
  try {
    c10::AutoGradMode no_grad(false);
    auto w = tensors(ws, n), g = tensors(grads, n), a = tensors(avgs, n);
    if (n_decayed > 0) at::_foreach_mul_(tensors(decayed, n_decayed), decay);
    at::_foreach_mul_(a, mom);
    at::_foreach_add_(a, g);
    at::_foreach_sub_(w, at::_foreach_mul(a, lr));
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// Scales n gradients so that their global L2 norm is at most `max`, without reading the
// norm back to the host: the clip coefficient stays on the device.
int runner_ext_clip_grad_norm(void* const* grads, size_t n, double max) {
  try {
    c10::AutoGradMode no_grad(false);
    if (n == 0) return 0;
    auto g = tensors(grads, n);
    auto total = at::stack(at::_foreach_norm(g, 2, at::kDouble)).norm();
    auto coef = total.add(1e-6).reciprocal().mul(max).clamp_max(1.0);
    at::_foreach_mul_(g, coef);
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

// Turns bf16 autocast on for one device type; `prev_*` receive the state to restore.
int runner_ext_autocast_enter(int cuda, int* prev_enabled, int* prev_dtype) {
  try {
    auto d = device_type(cuda);
    *prev_enabled = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    *prev_dtype = static_cast<int>(at::autocast::get_autocast_dtype(d));
    at::autocast::set_autocast_enabled(d, true);
    at::autocast::set_autocast_dtype(d, at::kBFloat16);
    at::autocast::increment_nesting();
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int runner_ext_autocast_exit(int cuda, int prev_enabled, int prev_dtype) {
  try {
    auto d = device_type(cuda);
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(d, prev_enabled != 0);
    at::autocast::set_autocast_dtype(d, static_cast<at::ScalarType>(prev_dtype));
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}

int runner_ext_autocast_enabled(int cuda) { return at::autocast::is_autocast_enabled(device_type(cuda)) ? 1 : 0; }

// Reads the tensors of a file torch.save wrote (a zip: data.pkl plus one record per
// storage). `pkl` is its data.pkl as the caller prepared it (OrderedDicts built as dicts,
// their attributes stored under `state_key`); libtorch's unpickler rebuilds the tensors
// (any dtype, strides and storage offsets as saved) on the CPU from the zip's records.
// `add` receives each name and a new tensor handle (an at::Tensor* the callee owns); the
// top object must be a dict of tensors, or hold one under "state_dict" or "model".
int runner_ext_read_pth(const char* path, const char* pkl, size_t pkl_len, const char* state_key, void* ctx,
                        void (*add)(void* ctx, const char* name, void* tensor)) {
  try {
    caffe2::serialize::PyTorchStreamReader reader{std::string(path)};
    if (reader.hasRecord("byteorder")) {
      auto [data, n] = reader.getRecord("byteorder");
      if (std::string(static_cast<const char*>(data.get()), n) != "little") return fail_with("it was saved on a big-endian machine");
    }
    size_t pos = 0;
    auto read = [&](char* buf, size_t n) {
      size_t k = std::min(n, pkl_len - pos);
      std::memcpy(buf, pkl + pos, k);
      pos += k;
      return k;
    };
    auto record = [&](const std::string& key) { return std::get<0>(reader.getRecord("data/" + key)); };
    auto no_classes = [](const c10::QualifiedName& name) -> c10::StrongTypePtr {
      throw std::runtime_error("it holds a `" + name.qualifiedName() + "` object; only tensors (a state_dict) can be read");
    };
    torch::jit::Unpickler unpickler(read, no_classes, nullptr, record, at::Device(at::kCPU));
    unpickler.set_version(reader.version());
    auto top = unpickler.parse_ivalue();
    if (!top.isGenericDict()) return fail_with(("it holds " + python_kind(top) + ", not a state_dict (a dict of tensors)").c_str());
    auto dict = top.toGenericDict();
    auto has_tensors = [](const c10::impl::GenericDict& d) {
      for (const auto& e : d)
        if (e.value().isTensor()) return true;
      return false;
    };
    if (!has_tensors(dict)) {
      for (const char* inner : {"state_dict", "model"}) {
        if (dict.contains(inner) && dict.at(inner).isGenericDict() && has_tensors(dict.at(inner).toGenericDict())) {
          dict = dict.at(inner).toGenericDict();
          break;
        }
      }
    }
    if (!has_tensors(dict)) return fail_with("it holds no tensors");
    for (const auto& e : dict) {
      if (!e.key().isString()) return fail_with(("it has " + python_kind(e.key()) + " as a key where a state_dict has parameter names").c_str());
      const std::string& name = e.key().toStringRef();
      if (name == state_key) continue;
      if (!e.value().isTensor()) return fail_with(("`" + name + "` is " + python_kind(e.value()) + ", not a tensor").c_str());
    }
    for (const auto& e : dict) {
      if (e.value().isTensor()) add(ctx, e.key().toStringRef().c_str(), new at::Tensor(e.value().toTensor()));
    }
    return 0;
  } catch (const std::exception& e) {
    return fail(e);
  }
}
}
