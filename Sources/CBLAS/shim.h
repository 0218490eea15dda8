#ifndef QWENFT_CBLAS_SHIM_H
#define QWENFT_CBLAS_SHIM_H
#include <cblas.h>
/* OpenBLAS extensions: thread count control. Declared by cblas.h of OpenBLAS. */
#endif
