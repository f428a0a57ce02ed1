// The libtorch switches tch does not expose: bf16 autocast (tch's autocast is CUDA fp16
// only), deterministic algorithms, cuDNN benchmark and TF32, and a warning handler that
// prints each distinct warning once (C++ libtorch does not deduplicate: a deterministic
// alert would otherwise print on every backward). Each entry point catches C++ exceptions
// and returns them as a message, since unwinding through Rust is undefined.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <c10/util/Exception.h>
#include <algorithm>
#include <cstring>
#include <exception>
#include <map>
#include <mutex>
#include <string>

namespace {
char last_error[512];

int fail(const std::exception& e) {
  std::strncpy(last_error, e.what(), sizeof(last_error) - 1);
  return 1;
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
}
