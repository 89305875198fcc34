// Thin torch wrapper of the CUDA kernels (csrc/cuda/*.cu), registered for the CUDA dispatch
// key. Built only with METAMLIP_CUDA=ON (CMake); the CPU build needs nothing from CUDA.
//
// The wrapper checks input, allocates every array with torch (caching allocator, current
// stream), does the sorting and prefix sums with torch ops, and launches the kernels.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstring>
#include <string>
#include <vector>

#include "metamlip/cell_grid.h"
#include "metamlip/cuda_kernels.h"
#include "metamlip/ops.h"

namespace metamlip {
namespace {

using torch::Tensor;

void check_launch(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, what, ": CUDA kernel launch failed: ", cudaGetErrorString(error));
}

cudaStream_t current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

/// A vector of plain structs copied to the device as bytes.
template <typename T>
Tensor to_device_bytes(const std::vector<T>& items, const torch::Device& device) {
  auto bytes = torch::empty({int64_t(items.size() * sizeof(T))}, torch::kUInt8);
  if (!items.empty()) std::memcpy(bytes.data_ptr<uint8_t>(), items.data(), items.size() * sizeof(T));
  return bytes.to(device);
}

/// (offsets [N + 1], order [P]): positions of `key` grouped by value, stably.
std::pair<Tensor, Tensor> group_by(const Tensor& key, int64_t n_atoms) {
  const Tensor order = std::get<1>(torch::sort(key, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  const Tensor counts = torch::bincount(key, /*weights=*/{}, n_atoms);
  Tensor offsets = torch::zeros({n_atoms + 1}, key.options());
  offsets.slice(0, 1).copy_(torch::cumsum(counts, 0));
  return {offsets, order.contiguous()};
}

NeighborResult neighbor_list_cuda(const Tensor& positions, double cutoff, const std::optional<Tensor>& cell,
                                  const std::optional<Tensor>& pbc, const std::optional<Tensor>& batch,
                                  bool full_list, bool return_vectors) {
  constexpr const char* op = "metamlip::neighbor_list: ";
  const NeighborQuery q = check_neighbor_query(positions, cutoff, cell, pbc, batch, full_list, return_vectors);
  const c10::cuda::CUDAGuard guard(positions.device());
  const cudaStream_t stream = current_stream();
  const auto device = positions.device();
  const auto f64 = positions.options().dtype(torch::kFloat64);
  const auto i64 = positions.options().dtype(torch::kInt64);
  const int64_t n = q.n_atoms, n_mol = q.n_molecules;
  const Tensor x = positions.detach().to(torch::kFloat64).contiguous();
  Tensor mol;
  if (batch.has_value() && batch->defined()) mol = batch->to(torch::kInt64).contiguous();
  const int64_t* mol_ptr = mol.defined() ? mol.data_ptr<int64_t>() : nullptr;

  // Effective cells on the host (cell_grid.h), for molecules with atoms.
  std::vector<int64_t> atoms_in(std::max<int64_t>(n_mol, 1), n);
  if (mol.defined() && n > 0) {
    const Tensor counts = torch::bincount(mol, {}, n_mol).cpu();
    std::memcpy(atoms_in.data(), counts.data_ptr<int64_t>(), n_mol * sizeof(int64_t));
  }
  const int64_t n_cells = q.cells.size(0), n_pbc = q.pbc.size(0);
  const bool shared = n_cells == 1 && n_pbc == 1;
  std::vector<grid::Cell> cells(shared ? 1 : n_mol);
  for (int64_t m = 0; m < int64_t(cells.size()); ++m) {
    if (!shared && atoms_in[m] == 0) continue;
    const double* c = q.cells.data_ptr<double>() + 9 * (n_cells == 1 ? 0 : m);
    const bool* p = q.pbc.data_ptr<bool>() + 3 * (n_pbc == 1 ? 0 : m);
    const bool periodic[3] = {p[0], p[1], p[2]};
    const std::string error = grid::make_cell(c, periodic, cells[m]);
    TORCH_CHECK(error.empty(), op, error, shared ? std::string() : " (molecule " + std::to_string(m) + ")");
  }
  const Tensor cells_device = to_device_bytes(cells, device);
  const auto* cells_ptr = reinterpret_cast<const grid::Cell*>(cells_device.data_ptr<uint8_t>());

  // Wrap, then the extent of every molecule along open directions, then grids on the host.
  Tensor frac = torch::empty({n, 3}, f64), image = torch::empty({n, 3}, i64);
  Tensor wrapped = torch::empty({n, 3}, f64);
  Tensor far_away = torch::zeros({1}, positions.options().dtype(torch::kInt32));
  check_launch(cuda::wrap_positions(stream, n, x.data_ptr<double>(), mol_ptr, cells_ptr, shared,
                                    frac.data_ptr<double>(), image.data_ptr<int64_t>(),
                                    wrapped.data_ptr<double>(), far_away.data_ptr<int>()),
               "metamlip::neighbor_list");
  TORCH_CHECK(far_away.item<int>() == 0, op, "an atom lies more than 2^30 cells away from the origin");
  Tensor lo = torch::full({std::max<int64_t>(n_mol, 1), 3}, INFINITY, f64);
  Tensor hi = torch::full({std::max<int64_t>(n_mol, 1), 3}, -INFINITY, f64);
  if (n > 0) {
    const Tensor index = mol.defined() ? mol.unsqueeze(1).expand({n, 3}).contiguous() : torch::zeros({n, 3}, i64);
    lo = lo.scatter_reduce(0, index, frac, "amin");
    hi = hi.scatter_reduce(0, index, frac, "amax");
  }
  lo = lo.cpu();
  hi = hi.cpu();
  std::vector<grid::Grid> grids(n_mol);
  int64_t total_bins = 0;
  for (int64_t m = 0; m < n_mol; ++m) {
    grid::Grid& g = grids[m];
    if (atoms_in[m] == 0) {
      g.bins[0] = g.bins[1] = g.bins[2] = 0;
    } else {
      const std::string error = grid::make_grid(cells[shared ? 0 : m], lo.data_ptr<double>() + 3 * m,
                                                hi.data_ptr<double>() + 3 * m, atoms_in[m], q.cutoff, g);
      TORCH_CHECK(error.empty(), op, error);
    }
    g.first_bin = total_bins;
    total_bins += g.n_bins();
  }
  const Tensor grids_device = to_device_bytes(grids, device);

  // Bins, stable sort of the atoms by bin, bin starts.
  Tensor bin = torch::empty({n, 3}, i64), global_bin = torch::empty({n}, i64);
  check_launch(cuda::bin_positions(stream, n, frac.data_ptr<double>(), mol_ptr,
                                   reinterpret_cast<const grid::Grid*>(grids_device.data_ptr<uint8_t>()),
                                   bin.data_ptr<int64_t>(), global_bin.data_ptr<int64_t>()),
               "metamlip::neighbor_list");
  const auto binned = group_by(global_bin, total_bins);
  const Tensor &bin_start = binned.first, &sorted_atom = binned.second;
  const Tensor sorted_wrapped = wrapped.index_select(0, sorted_atom).contiguous();

  cuda::BinnedDevice b;
  b.n_atoms = n;
  b.cutoff = q.cutoff;
  b.full_list = q.full_list;
  b.shared_cell = shared;
  b.molecule = mol_ptr;
  b.cells = cells_ptr;
  b.grids = reinterpret_cast<const grid::Grid*>(grids_device.data_ptr<uint8_t>());
  b.wrapped = wrapped.data_ptr<double>();
  b.image = image.data_ptr<int64_t>();
  b.bin = bin.data_ptr<int64_t>();
  b.bin_start = bin_start.data_ptr<int64_t>();
  b.sorted_atom = sorted_atom.data_ptr<int64_t>();
  b.sorted_wrapped = sorted_wrapped.data_ptr<double>();

  // Count, prefix sum, fill.
  Tensor count = torch::zeros({n}, i64);
  check_launch(cuda::count_neighbors(stream, b, count.data_ptr<int64_t>()), "metamlip::neighbor_list");
  Tensor offsets = torch::zeros({n + 1}, i64);
  if (n > 0) offsets.slice(0, 1).copy_(torch::cumsum(count, 0));
  const int64_t n_pairs = offsets[n].item<int64_t>();
  Tensor i_out = torch::empty({n_pairs}, i64), j_out = torch::empty({n_pairs}, i64);
  Tensor s_out = torch::empty({n_pairs, 3}, i64);
  check_launch(cuda::fill_neighbors(stream, b, offsets.data_ptr<int64_t>(), i_out.data_ptr<int64_t>(),
                                    j_out.data_ptr<int64_t>(), s_out.data_ptr<int64_t>()),
               "metamlip::neighbor_list");

  Tensor distances = torch::empty({q.return_vectors ? n_pairs : 0}, positions.options());
  Tensor vectors = torch::empty({q.return_vectors ? n_pairs : 0, 3}, positions.options());
  if (q.return_vectors) {
    const Tensor user_cells = q.cells.to(device);
    const bool shared_rows = q.cells.size(0) == 1;
    AT_DISPATCH_FLOATING_TYPES(vectors.scalar_type(), "metamlip::neighbor_list", [&] {
      check_launch(cuda::pair_vectors(stream, n_pairs, x.data_ptr<double>(), mol_ptr,
                                      user_cells.data_ptr<double>(), shared_rows, i_out.data_ptr<int64_t>(),
                                      j_out.data_ptr<int64_t>(), s_out.data_ptr<int64_t>(),
                                      distances.data_ptr<scalar_t>(), vectors.data_ptr<scalar_t>()),
                   "metamlip::neighbor_list");
    });
  }
  return {i_out, j_out, s_out, distances, vectors};
}

void check_cuda(const char* what, const Tensor& a) {
  TORCH_CHECK(a.is_cuda(), what, " (CUDA) got a tensor on ", a.device());
}

Tensor envsum_cuda(const Tensor& sense, const Tensor& features, const Tensor& pair_first,
                   const Tensor& pair_second) {
  TORCH_CHECK(sense.dim() == 2 && features.dim() == 2 && sense.size(0) == pair_first.size(0),
              "metamlip::envsum: sense must have shape [P, S] and features [N, F], got ", sense.sizes(),
              " and ", features.sizes(), " with P = ", pair_first.size(0));
  check_pair_sum("metamlip::envsum", sense, features, features.size(0), pair_first, pair_second);
  check_cuda("metamlip::envsum", sense);
  const c10::cuda::CUDAGuard guard(sense.device());
  const int64_t N = features.size(0), S = sense.size(1), F = features.size(1);
  if (pair_first.numel() == 0 || S == 0 || F == 0) return torch::zeros({N, S, F}, features.options());
  TORCH_CHECK(S * int64_t(features.element_size()) + 8 <= 48 * 1024,
              "metamlip::envsum (CUDA): too many sensitivities for one shared-memory row, got ", S);
  const Tensor s = sense.contiguous(), z = features.contiguous(), j = pair_second.contiguous();
  const auto grouped = group_by(pair_first.contiguous(), N);
  const Tensor &offsets = grouped.first, &order = grouped.second;
  Tensor out = torch::empty({N, S, F}, features.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "metamlip::envsum", [&] {
    check_launch(cuda::envsum(current_stream(), N, S, F, s.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
                              j.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), order.data_ptr<int64_t>(),
                              out.data_ptr<scalar_t>()),
                 "metamlip::envsum");
  });
  return out;
}

Tensor sensesum_cuda(const Tensor& env_grad, const Tensor& features, const Tensor& pair_first,
                     const Tensor& pair_second) {
  TORCH_CHECK(env_grad.dim() == 3 && features.dim() == 2 && env_grad.size(0) == features.size(0) &&
                  env_grad.size(2) == features.size(1),
              "metamlip::sensesum: env_grad [N, S, F] and features [N, F] do not match: ", env_grad.sizes(),
              " and ", features.sizes());
  const int64_t N = features.size(0), P = pair_first.numel(), S = env_grad.size(1), F = features.size(1);
  check_pair_sum("metamlip::sensesum", env_grad, features, N, pair_first, pair_second);
  check_cuda("metamlip::sensesum", env_grad);
  const c10::cuda::CUDAGuard guard(env_grad.device());
  if (P == 0 || S == 0 || F == 0) return torch::zeros({P, S}, features.options());
  const Tensor G = env_grad.contiguous(), z = features.contiguous();
  const Tensor i = pair_first.contiguous(), j = pair_second.contiguous();
  Tensor out = torch::empty({P, S}, features.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "metamlip::sensesum", [&] {
    check_launch(cuda::sensesum(current_stream(), P, S, F, G.data_ptr<scalar_t>(), z.data_ptr<scalar_t>(),
                                i.data_ptr<int64_t>(), j.data_ptr<int64_t>(), out.data_ptr<scalar_t>()),
                 "metamlip::sensesum");
  });
  return out;
}

Tensor featsum_cuda(const Tensor& env_grad, const Tensor& sense, const Tensor& pair_first,
                    const Tensor& pair_second) {
  TORCH_CHECK(env_grad.dim() == 3 && sense.dim() == 2 && env_grad.size(1) == sense.size(1) &&
                  sense.size(0) == pair_first.size(0),
              "metamlip::featsum: env_grad [N, S, F] and sense [P, S] do not match: ", env_grad.sizes(), " and ",
              sense.sizes());
  const int64_t N = env_grad.size(0), S = env_grad.size(1), F = env_grad.size(2);
  check_pair_sum("metamlip::featsum", env_grad, sense, N, pair_first, pair_second);
  check_cuda("metamlip::featsum", env_grad);
  const c10::cuda::CUDAGuard guard(env_grad.device());
  if (pair_first.numel() == 0 || S == 0 || F == 0) return torch::zeros({N, F}, env_grad.options());
  const Tensor G = env_grad.contiguous(), s = sense.contiguous(), i = pair_first.contiguous();
  const auto grouped = group_by(pair_second.contiguous(), N);
  const Tensor &offsets = grouped.first, &order = grouped.second;
  Tensor out = torch::empty({N, F}, env_grad.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), "metamlip::featsum", [&] {
    check_launch(cuda::featsum(current_stream(), N, S, F, G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                               i.data_ptr<int64_t>(), offsets.data_ptr<int64_t>(), order.data_ptr<int64_t>(),
                               out.data_ptr<scalar_t>()),
                 "metamlip::featsum");
  });
  return out;
}

Tensor sensitivity_cuda(const Tensor& distances, const Tensor& mu, const Tensor& sigma, double cutoff) {
  check_sensitivity("metamlip::sensitivity", distances, mu, sigma, cutoff);
  check_cuda("metamlip::sensitivity", distances);
  const c10::cuda::CUDAGuard guard(distances.device());
  const int64_t P = distances.size(0), S = mu.size(0);
  Tensor out = torch::empty({P, S}, distances.options());
  if (P == 0 || S == 0) return out;
  const Tensor r = distances.contiguous(), m = mu.contiguous(), w = sigma.contiguous();
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "metamlip::sensitivity", [&] {
    check_launch(cuda::sensitivity(current_stream(), P, S, r.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(),
                                   w.data_ptr<scalar_t>(), cutoff, out.data_ptr<scalar_t>()),
                 "metamlip::sensitivity");
  });
  return out;
}

Tensor sensitivity_backward_cuda(const Tensor& grad, const Tensor& sense, const Tensor& distances,
                                 const Tensor& mu, const Tensor& sigma, double cutoff) {
  check_sensitivity_backward(grad, sense, distances, mu, sigma, cutoff);
  check_cuda("metamlip::sensitivity_backward", distances);
  const c10::cuda::CUDAGuard guard(distances.device());
  const int64_t P = distances.size(0), S = mu.size(0);
  Tensor out = torch::empty({P}, distances.options());
  if (P == 0) return out;
  const Tensor g = grad.contiguous(), s = sense.contiguous(), r = distances.contiguous();
  const Tensor m = mu.contiguous(), w = sigma.contiguous();
  AT_DISPATCH_FLOATING_TYPES(r.scalar_type(), "metamlip::sensitivity_backward", [&] {
    check_launch(cuda::sensitivity_backward(current_stream(), P, S, g.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                            r.data_ptr<scalar_t>(), m.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                                            cutoff, out.data_ptr<scalar_t>()),
                 "metamlip::sensitivity_backward");
  });
  return out;
}

/// Shape checks of the four HIP-NN-TS ops (the CPU versions' messages) and the size limits of
/// the CUDA kernels.
void check_tensorsum(const char* what, bool ok, const std::string& expected,
                     std::initializer_list<const Tensor*> tensors, int64_t C, int64_t O) {
  std::string got;
  for (const auto* t : tensors) got += (got.empty() ? "" : ", ") + c10::str(t->sizes());
  TORCH_CHECK(ok, what, ": shapes do not match: ", expected, " expected, got ", got);
  TORCH_CHECK(C <= cuda::kMaxTensorComponents && O <= 1024, what, " (CUDA): at most ",
              cuda::kMaxTensorComponents, " tensor components and 1024 features, got ", C, " and ", O);
}

Tensor tensorsum_cuda(const Tensor& sense, const Tensor& basis, const Tensor& values, const Tensor& pair_first,
                      const Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum";
  const int64_t P = pair_first.numel();
  check_tensorsum(what,
                  sense.dim() == 2 && basis.dim() == 2 && values.dim() == 3 && sense.size(0) == P &&
                      basis.size(0) == P && values.size(1) == sense.size(1),
                  "sense [P, S], basis [P, C], values [N, S, O]", {&sense, &basis, &values}, basis.size(1),
                  values.size(2));
  check_pair_sum(what, sense, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, basis, values, values.size(0), pair_first, pair_second);
  check_cuda(what, sense);
  const c10::cuda::CUDAGuard guard(sense.device());
  const int64_t N = values.size(0), S = sense.size(1), C = basis.size(1), O = values.size(2);
  if (P == 0 || S == 0 || C == 0 || O == 0) return torch::zeros({N, C, O}, values.options());
  const Tensor s = sense.contiguous(), t = basis.contiguous(), V = values.contiguous(), j = pair_second.contiguous();
  const auto grouped = group_by(pair_first.contiguous(), N);
  Tensor out = torch::empty({N, C, O}, values.options());
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), what, [&] {
    check_launch(cuda::tensorsum(current_stream(), N, S, C, O, s.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(),
                                 V.data_ptr<scalar_t>(), j.data_ptr<int64_t>(), grouped.first.data_ptr<int64_t>(),
                                 grouped.second.data_ptr<int64_t>(), out.data_ptr<scalar_t>()),
                 what);
  });
  return out;
}

Tensor tensorsum_sense_cuda(const Tensor& grad, const Tensor& basis, const Tensor& values, const Tensor& pair_first,
                            const Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_sense";
  const int64_t P = pair_first.numel();
  check_tensorsum(what,
                  grad.dim() == 3 && basis.dim() == 2 && values.dim() == 3 && basis.size(0) == P &&
                      grad.size(0) == values.size(0) && grad.size(1) == basis.size(1) &&
                      grad.size(2) == values.size(2),
                  "grad [N, C, O], basis [P, C], values [N, S, O]", {&grad, &basis, &values}, basis.size(1),
                  values.size(2));
  check_pair_sum(what, grad, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, basis, values, values.size(0), pair_first, pair_second);
  check_cuda(what, grad);
  const c10::cuda::CUDAGuard guard(grad.device());
  const int64_t S = values.size(1), C = basis.size(1), O = values.size(2);
  if (P == 0 || S == 0 || C == 0 || O == 0) return torch::zeros({P, S}, values.options());
  const Tensor G = grad.contiguous(), t = basis.contiguous(), V = values.contiguous();
  const Tensor i = pair_first.contiguous(), j = pair_second.contiguous();
  Tensor out = torch::empty({P, S}, values.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    check_launch(cuda::tensorsum_sense(current_stream(), P, S, C, O, G.data_ptr<scalar_t>(), t.data_ptr<scalar_t>(),
                                       V.data_ptr<scalar_t>(), i.data_ptr<int64_t>(), j.data_ptr<int64_t>(),
                                       out.data_ptr<scalar_t>()),
                 what);
  });
  return out;
}

Tensor tensorsum_basis_cuda(const Tensor& grad, const Tensor& sense, const Tensor& values, const Tensor& pair_first,
                            const Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_basis";
  const int64_t P = pair_first.numel();
  check_tensorsum(what,
                  grad.dim() == 3 && sense.dim() == 2 && values.dim() == 3 && sense.size(0) == P &&
                      grad.size(0) == values.size(0) && sense.size(1) == values.size(1) &&
                      grad.size(2) == values.size(2),
                  "grad [N, C, O], sense [P, S], values [N, S, O]", {&grad, &sense, &values}, grad.size(1),
                  values.size(2));
  check_pair_sum(what, grad, values, values.size(0), pair_first, pair_second);
  check_pair_sum(what, sense, values, values.size(0), pair_first, pair_second);
  check_cuda(what, grad);
  const c10::cuda::CUDAGuard guard(grad.device());
  const int64_t S = sense.size(1), C = grad.size(1), O = values.size(2);
  if (P == 0 || S == 0 || C == 0 || O == 0) return torch::zeros({P, C}, values.options());
  const Tensor G = grad.contiguous(), s = sense.contiguous(), V = values.contiguous();
  const Tensor i = pair_first.contiguous(), j = pair_second.contiguous();
  Tensor out = torch::empty({P, C}, values.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    check_launch(cuda::tensorsum_basis(current_stream(), P, S, C, O, G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                       V.data_ptr<scalar_t>(), i.data_ptr<int64_t>(), j.data_ptr<int64_t>(),
                                       out.data_ptr<scalar_t>()),
                 what);
  });
  return out;
}

Tensor tensorsum_values_cuda(const Tensor& grad, const Tensor& sense, const Tensor& basis, const Tensor& pair_first,
                             const Tensor& pair_second) {
  constexpr const char* what = "metamlip::tensorsum_values";
  const int64_t P = pair_first.numel();
  check_tensorsum(what,
                  grad.dim() == 3 && sense.dim() == 2 && basis.dim() == 2 && sense.size(0) == P &&
                      basis.size(0) == P && grad.size(1) == basis.size(1),
                  "grad [N, C, O], sense [P, S], basis [P, C]", {&grad, &sense, &basis}, basis.size(1), grad.size(2));
  check_pair_sum(what, grad, sense, grad.size(0), pair_first, pair_second);
  check_pair_sum(what, grad, basis, grad.size(0), pair_first, pair_second);
  check_cuda(what, grad);
  const c10::cuda::CUDAGuard guard(grad.device());
  const int64_t N = grad.size(0), S = sense.size(1), C = basis.size(1), O = grad.size(2);
  if (P == 0 || S == 0 || C == 0 || O == 0) return torch::zeros({N, S, O}, grad.options());
  const Tensor G = grad.contiguous(), s = sense.contiguous(), t = basis.contiguous(), i = pair_first.contiguous();
  const auto grouped = group_by(pair_second.contiguous(), N);
  Tensor out = torch::empty({N, S, O}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(G.scalar_type(), what, [&] {
    check_launch(cuda::tensorsum_values(current_stream(), N, S, C, O, G.data_ptr<scalar_t>(), s.data_ptr<scalar_t>(),
                                        t.data_ptr<scalar_t>(), i.data_ptr<int64_t>(),
                                        grouped.first.data_ptr<int64_t>(), grouped.second.data_ptr<int64_t>(),
                                        out.data_ptr<scalar_t>()),
                 what);
  });
  return out;
}

}  // namespace
}  // namespace metamlip

TORCH_LIBRARY_IMPL(metamlip, CUDA, m) {
  m.impl("neighbor_list", &metamlip::neighbor_list_cuda);
  m.impl("envsum", &metamlip::envsum_cuda);
  m.impl("sensesum", &metamlip::sensesum_cuda);
  m.impl("featsum", &metamlip::featsum_cuda);
  m.impl("sensitivity", &metamlip::sensitivity_cuda);
  m.impl("sensitivity_backward", &metamlip::sensitivity_backward_cuda);
  m.impl("tensorsum", &metamlip::tensorsum_cuda);
  m.impl("tensorsum_sense", &metamlip::tensorsum_sense_cuda);
  m.impl("tensorsum_basis", &metamlip::tensorsum_basis_cuda);
  m.impl("tensorsum_values", &metamlip::tensorsum_values_cuda);
}
