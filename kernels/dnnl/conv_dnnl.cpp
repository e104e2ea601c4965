// oneDNN float convolution (placeholder: leaves the table's conv as is).
#include "kernels/dnnl/dnnl_conv.h"

namespace lowbit::kernels {
void fill_dnnl_conv(FloatKernels&) {}
}  // namespace lowbit::kernels
