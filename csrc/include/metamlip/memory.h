// Large CPU output tensors: whole huge pages, recycled between calls.
#pragma once

#include <torch/torch.h>

namespace metamlip {

/// An uninitialised CPU tensor of `sizes` (contiguous). Tensors of 2 MB or more get storage
/// made of whole 2 MB pages advised to the kernel as transparent huge pages, and, when freed,
/// their storage goes back to a small process-wide cache (at most 1 GiB of idle blocks) that the
/// next large output of a similar size reuses: the ops' outputs are often hundreds of MB, made
/// again every MD step, and the kernel's page faults and zeroing of fresh memory cost about as
/// much as computing them. Smaller tensors are plain torch::empty.
torch::Tensor empty_huge(torch::IntArrayRef sizes, const torch::TensorOptions& options);

}  // namespace metamlip
