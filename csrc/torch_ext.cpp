// The two libtorch switches tch does not expose: bf16 autocast (tch's autocast is
// CUDA fp16 only) and deterministic algorithms. Each entry point catches C++ exceptions
// and returns them as a message, since unwinding through Rust is undefined.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <cstring>
#include <exception>

namespace {
char last_error[512];

int fail(const std::exception& e) {
  std::strncpy(last_error, e.what(), sizeof(last_error) - 1);
  return 1;
}

at::DeviceType device_type(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
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
