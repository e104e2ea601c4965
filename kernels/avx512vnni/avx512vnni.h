// Registration of the AVX512-VNNI kernels. No intrinsics here, so table.cpp
// (built without -mavx512*) can include it. The float entries of the
// avx512vnni table are the avx2 ones; its int8 kernels come later.
#pragma once
#include "kernels/kernels.h"

namespace lowbit::kernels {
// zmm FMA and vpdpbusd peak probes.
void fill_avx512vnni_peak(PeakProbes& p);
}  // namespace lowbit::kernels
