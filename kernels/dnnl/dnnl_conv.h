// Registration of the oneDNN float convolution. No oneDNN types here, so
// table.cpp and its users don't need oneDNN's headers.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// Points the three f32_conv2d_* entries at oneDNN and sets conv_path.
void fill_dnnl_conv(FloatKernels& k);
}  // namespace lowbit::kernels
