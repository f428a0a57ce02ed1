// libtorch's c10d (the engine under torch.distributed and DDP), which tch does not wrap
// (tch-rs issue 936): a TCPStore rendezvous, a Gloo (or, when built with it, NCCL) process
// group, the collectives a data-parallel fit needs, and a synchronised BatchNorm as an
// autograd function whose backward allreduces the gradient statistics, as PyTorch's
// SyncBatchNorm does (its fused kernels are CUDA-only, so this one is written with plain
// ops and runs anywhere). Every entry point catches C++ exceptions and returns them as a
// malloc'd message (NULL on success), since unwinding through Rust is undefined.
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <c10/util/Exception.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct runner_group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  int rank;
  int world;
};

namespace {
using ms = std::chrono::milliseconds;

char* message(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out) std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

// c10's own messages without the C++ frames their what() appends.
char* fail(const std::exception& e) {
  if (auto c = dynamic_cast<const c10::Error*>(&e)) return message(c->what_without_backtrace());
  return message(e.what());
}

template <class F>
char* guarded(F f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    return fail(e);
  } catch (...) {
    return message("unknown C++ exception");
  }
}

std::vector<at::Tensor> tensors(void* const* p, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; i++) v.push_back(*static_cast<at::Tensor*>(p[i]));
  return v;
}

void wait(const c10::intrusive_ptr<c10d::Work>& w) { w->wait(); }

// Runs `collective` on flat buffers of at most `cap` bytes, one per run of tensors of one
// dtype and device, all issued before the first is waited on; the results are copied back
// into the tensors (in place) unless the buffer is the tensor itself.
template <class C>
void bucketed(std::vector<at::Tensor>& ts, size_t cap, C collective) {
  c10::AutoGradMode no_grad(false);
  std::vector<std::pair<std::vector<at::Tensor>, at::Tensor>> buckets;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  size_t i = 0;
  while (i < ts.size()) {
    std::vector<at::Tensor> group{ts[i]};
    size_t bytes = ts[i].numel() * ts[i].element_size();
    size_t j = i + 1;
    while (j < ts.size() && ts[j].scalar_type() == ts[i].scalar_type() && ts[j].device() == ts[i].device() &&
           bytes + ts[j].numel() * ts[j].element_size() <= cap) {
      bytes += ts[j].numel() * ts[j].element_size();
      group.push_back(ts[j++]);
    }
    i = j;
    at::Tensor flat;
    if (group.size() == 1 && group[0].is_contiguous()) {
      flat = group[0];
    } else {
      std::vector<at::Tensor> views;
      for (auto& t : group) views.push_back(t.reshape({-1}));
      flat = at::cat(views);
    }
    std::vector<at::Tensor> one{flat};
    works.push_back(collective(one));
    buckets.emplace_back(std::move(group), flat);
  }
  for (auto& w : works) wait(w);
  for (auto& [group, flat] : buckets) {
    if (group.size() == 1 && flat.is_same(group[0])) continue;
    int64_t off = 0;
    for (auto& t : group) {
      t.copy_(flat.narrow(0, off, t.numel()).view(t.sizes()));
      off += t.numel();
    }
  }
}

at::Tensor allgather(runner_group* g, const at::Tensor& x) {
  std::vector<at::Tensor> in{x.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < g->world; r++) out[0].push_back(at::empty_like(in[0]));
  wait(g->backend->allgather(out, in));
  return at::stack(out[0]);
}

// BatchNorm over the whole group's batch: statistics gathered from every rank (weighted by
// their item counts), the output normalised with them, and in backward the per-channel
// sums of dy and dy * (x - mean) allreduced so that every rank's input gradient is the
// gradient of the sum of all ranks' losses, as PyTorch's SyncBatchNorm computes it. On the
// CPU it computes in double, as libtorch's own CPU BatchNorm accumulates, so that a group
// and one process over the same batch agree to float precision.
struct SyncBatchNorm : public torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor weight, at::Tensor bias,
                            at::Tensor running_mean, at::Tensor running_var, double momentum, double eps, int64_t group) {
    auto g = reinterpret_cast<runner_group*>(group);
    int64_t c = x.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = c;
    auto xf = x.to(x.is_cuda() ? at::kFloat : at::kDouble);
    double count = static_cast<double>(x.numel() / c);
    auto mean = xf.mean(dims);
    auto var = xf.var(dims, /*unbiased=*/false);
    auto stats = allgather(g, at::cat({mean, var, at::full({1}, count, mean.options())}));  // [world, 2C+1]
    auto counts = stats.select(1, 2 * c).unsqueeze(1);
    auto n = counts.sum();
    auto means = stats.narrow(1, 0, c);
    auto gmean = (means * counts).sum(0) / n;
    auto gvar = ((stats.narrow(1, c, c) + (means - gmean).pow(2)) * counts).sum(0) / n;
    auto invstd = (gvar + eps).rsqrt();
    if (running_mean.defined()) {
      c10::AutoGradMode no_grad(false);
      double total = n.item<double>();
      running_mean.mul_(1 - momentum).add_(gmean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum).add_((gvar * (total / std::max(total - 1, 1.0))).to(running_var.scalar_type()), momentum);
    }
    auto out = (xf - gmean.view(shape)) * invstd.view(shape);
    if (weight.defined()) out = out * weight.view(shape);
    if (bias.defined()) out = out + bias.view(shape);
    ctx->save_for_backward({x, weight, gmean, invstd, n});
    ctx->saved_data["group"] = group;
    return out.to(x.scalar_type());
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto &x = saved[0], &weight = saved[1], &gmean = saved[2], &invstd = saved[3], &n = saved[4];
    auto g = reinterpret_cast<runner_group*>(ctx->saved_data["group"].toInt());
    int64_t c = x.size(1);
    std::vector<int64_t> dims{0};
    for (int64_t d = 2; d < x.dim(); d++) dims.push_back(d);
    std::vector<int64_t> shape(x.dim(), 1);
    shape[1] = c;
    auto dy = grads[0].to(gmean.scalar_type());
    auto xmu = x.to(gmean.scalar_type()) - gmean.view(shape);
    auto sum_dy = dy.sum(dims);
    auto sum_dy_xmu = (dy * xmu).sum(dims);
    at::Tensor gx, gw, gb;
    if (ctx->needs_input_grad(0)) {
      std::vector<at::Tensor> both{at::cat({sum_dy, sum_dy_xmu})};
      wait(g->backend->allreduce(both));
      auto mean_dy = both[0].narrow(0, 0, c) / n;
      auto mean_dy_xmu = both[0].narrow(0, c, c) / n;
      auto scale = weight.defined() ? invstd * weight : invstd;
      gx = ((dy - mean_dy.view(shape) - xmu * (invstd * invstd * mean_dy_xmu).view(shape)) * scale.view(shape))
               .to(x.scalar_type());
    }
    if (weight.defined() && ctx->needs_input_grad(1)) gw = (sum_dy_xmu * invstd).to(weight.scalar_type());
    if (ctx->needs_input_grad(2)) gb = sum_dy.to(weight.defined() ? weight.scalar_type() : grads[0].scalar_type());
    return {gx, gw, gb, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

extern "C" {
void runner_c10d_free(void* p) { std::free(p); }

// Joins the group's store: the TCPStore at host:port, served here when `is_server`.
// Ranks meet there (see dist/rendezvous.rs) before the backend is made.
char* runner_c10d_new(const char* host, int port, int rank, int world, int is_server, int64_t timeout_ms,
                      runner_group** out) {
  return guarded([&] {
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = is_server != 0;
    opts.waitWorkers = false;
    opts.timeout = ms(timeout_ms);
    auto g = std::make_unique<runner_group>();
    g->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
    g->rank = rank;
    g->world = world;
    *out = g.release();
  });
}

// The group's backend over its store: 0 Gloo, whose device binds to `gloo_host` (empty:
// the machine's hostname, as torch does), or 1 NCCL on the current CUDA device.
char* runner_c10d_backend(runner_group* g, int backend, int64_t timeout_ms, const char* gloo_host) {
  return guarded([&] {
    if (backend == 0) {
      auto o = c10d::ProcessGroupGloo::Options::create(ms(timeout_ms));
      std::string bind = gloo_host;
      o->devices.push_back(bind.empty() ? c10d::ProcessGroupGloo::createDefaultDevice()
                                        : c10d::ProcessGroupGloo::createDeviceForHostname(bind));
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->world, o);
    } else {
#ifdef USE_C10D_NCCL
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = ms(timeout_ms);
      g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, g->rank, g->world, o);
#else
      throw std::runtime_error("this runner was built without NCCL (no libtorch_cuda or CUDA headers at build time)");
#endif
    }
  });
}

void runner_c10d_destroy(runner_group* g) {
  try {
    delete g;
  } catch (...) {
  }
}

char* runner_c10d_store_set(runner_group* g, const char* key, const uint8_t* value, size_t len) {
  return guarded([&] { g->store->set(key, std::vector<uint8_t>(value, value + len)); });
}

// Waits up to `timeout_ms` for `key`, then returns its value (malloc'd, runner_c10d_free).
char* runner_c10d_store_get(runner_group* g, const char* key, int64_t timeout_ms, uint8_t** value, size_t* len) {
  return guarded([&] {
    g->store->wait({key}, ms(timeout_ms));
    auto v = g->store->get(key);
    *value = static_cast<uint8_t*>(std::malloc(v.empty() ? 1 : v.size()));
    if (!*value) throw std::bad_alloc();
    std::memcpy(*value, v.data(), v.size());
    *len = v.size();
  });
}

char* runner_c10d_store_check(runner_group* g, const char* key, int* present) {
  return guarded([&] { *present = g->store->check({key}) ? 1 : 0; });
}

// In place over `n` tensors: op 0 sum, 1 average; flat buckets of at most `cap` bytes.
char* runner_c10d_allreduce(runner_group* g, void* const* ts, size_t n, int op, size_t cap) {
  return guarded([&] {
    auto v = tensors(ts, n);
    c10d::AllreduceOptions o;
    o.reduceOp = op == 1 ? c10d::ReduceOp(c10d::ReduceOp::AVG) : c10d::ReduceOp(c10d::ReduceOp::SUM);
    bucketed(v, cap, [&](std::vector<at::Tensor>& one) { return g->backend->allreduce(one, o); });
  });
}

// Every rank's tensors become rank `root`'s, in place.
char* runner_c10d_broadcast(runner_group* g, void* const* ts, size_t n, int root, size_t cap) {
  return guarded([&] {
    auto v = tensors(ts, n);
    c10d::BroadcastOptions o;
    o.rootRank = root;
    bucketed(v, cap, [&](std::vector<at::Tensor>& one) { return g->backend->broadcast(one, o); });
  });
}

// `[world, ...]`: every rank's `x` (all of one shape), stacked in rank order.
char* runner_c10d_allgather(runner_group* g, void* x, void** out) {
  return guarded([&] { *out = new at::Tensor(allgather(g, *static_cast<at::Tensor*>(x))); });
}

char* runner_c10d_barrier(runner_group* g) {
  return guarded([&] { wait(g->backend->barrier()); });
}

// Training-mode BatchNorm over the group's batch (see SyncBatchNorm); weight, bias and the
// running statistics may be NULL.
char* runner_c10d_sync_batch_norm(runner_group* g, void* x, void* weight, void* bias, void* running_mean, void* running_var,
                                  double momentum, double eps, void** out) {
  return guarded([&] {
    auto t = [](void* p) { return p ? *static_cast<at::Tensor*>(p) : at::Tensor(); };
    auto y = SyncBatchNorm::apply(t(x), t(weight), t(bias), t(running_mean), t(running_var), momentum, eps,
                                  reinterpret_cast<int64_t>(g));
    *out = new at::Tensor(y);
  });
}
}
