#ifndef QWENFT_CCUDA_H
#define QWENFT_CCUDA_H
/* The few CUDA driver, NVRTC and cuBLAS types and entry points qwenft uses, declared here so the
   package builds with no CUDA headers or libraries. The libraries are dlopen()ed at run time
   (ccuda.c); a function table per library is filled by the bind functions below and owned by the
   caller (Swift keeps each in an @unchecked Sendable class, so no C global is shared).

   Driver entry points are resolved through cuGetProcAddress at a fixed ABI version
   (CCUDA_DRIVER_ABI), so `cuMemAlloc` means the same signature on every driver that accepts it. */
#include <stddef.h>
#include <stdint.h>

/* ---- Driver API ---------------------------------------------------------------------------- */
typedef int CUresult;                 /* CUDA_SUCCESS = 0 */
typedef int CUdevice;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef unsigned long long CUdeviceptr;

/* The ABI version every driver entry point is requested at (CUDA 12.0 signatures: the _v2 forms
   of cuMemAlloc, cuMemcpy*, cuDeviceTotalMem, cuDevicePrimaryCtxRelease). */
#define CCUDA_DRIVER_ABI 12000

/* CUdevice_attribute values used (stable since CUDA 2–10). */
#define CCUDA_ATTR_MULTIPROCESSOR_COUNT 16
#define CCUDA_ATTR_COMPUTE_CAPABILITY_MAJOR 75
#define CCUDA_ATTR_COMPUTE_CAPABILITY_MINOR 76
#define CCUDA_ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN 97

typedef struct {
    void *handle;
    CUresult (*cuInit)(unsigned int flags);
    CUresult (*cuDriverGetVersion)(int *version);
    CUresult (*cuGetErrorName)(CUresult error, const char **name);
    CUresult (*cuGetErrorString)(CUresult error, const char **text);
    CUresult (*cuDeviceGetCount)(int *count);
    CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
    CUresult (*cuDeviceGetName)(char *name, int len, CUdevice device);
    CUresult (*cuDeviceGetAttribute)(int *value, int attribute, CUdevice device);
    CUresult (*cuDeviceTotalMem)(size_t *bytes, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *context, CUdevice device);
    CUresult (*cuDevicePrimaryCtxRelease)(CUdevice device);
    CUresult (*cuCtxSetCurrent)(CUcontext context);
    CUresult (*cuCtxSynchronize)(void);
    CUresult (*cuMemGetInfo)(size_t *free, size_t *total);
    CUresult (*cuMemAlloc)(CUdeviceptr *pointer, size_t bytes);
    CUresult (*cuMemFree)(CUdeviceptr pointer);
    CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes);
    CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes);
    CUresult (*cuMemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
    CUresult (*cuMemsetD32)(CUdeviceptr dst, unsigned int value, size_t count);
    CUresult (*cuModuleLoadData)(CUmodule *module, const void *image);
    CUresult (*cuModuleUnload)(CUmodule module);
    CUresult (*cuModuleGetFunction)(CUfunction *function, CUmodule module, const char *name);
    CUresult (*cuFuncSetAttribute)(CUfunction function, int attribute, int value);
    CUresult (*cuLaunchKernel)(CUfunction f, unsigned int gridX, unsigned int gridY, unsigned int gridZ,
                               unsigned int blockX, unsigned int blockY, unsigned int blockZ,
                               unsigned int sharedBytes, CUstream stream, void **params, void **extra);
    CUresult (*cuStreamSynchronize)(CUstream stream);
} CCUDADriver;

/* ---- NVRTC --------------------------------------------------------------------------------- */
typedef int nvrtcResult;              /* NVRTC_SUCCESS = 0 */
typedef struct _nvrtcProgram *nvrtcProgram;

typedef struct {
    void *handle;
    void *builtinsHandle;
    nvrtcResult (*nvrtcVersion)(int *major, int *minor);
    const char *(*nvrtcGetErrorString)(nvrtcResult result);
    nvrtcResult (*nvrtcCreateProgram)(nvrtcProgram *program, const char *source, const char *name,
                                      int headerCount, const char *const *headers,
                                      const char *const *includeNames);
    nvrtcResult (*nvrtcDestroyProgram)(nvrtcProgram *program);
    nvrtcResult (*nvrtcCompileProgram)(nvrtcProgram program, int optionCount, const char *const *options);
    nvrtcResult (*nvrtcGetProgramLogSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetProgramLog)(nvrtcProgram program, char *log);
    nvrtcResult (*nvrtcGetCUBINSize)(nvrtcProgram program, size_t *size);
    nvrtcResult (*nvrtcGetCUBIN)(nvrtcProgram program, char *cubin);
} CCUDANVRTC;

/* ---- cuBLAS / cuBLASLt ----------------------------------------------------------------------- */
typedef int cublasStatus_t;           /* CUBLAS_STATUS_SUCCESS = 0 */
typedef struct cublasContext *cublasHandle_t;
typedef struct cublasLtContext *cublasLtHandle_t;
typedef int cublasOperation_t;        /* N = 0, T = 1 */
typedef int cudaDataType_t;           /* CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 */
typedef int cublasComputeType_t;      /* CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77 */
typedef int cublasGemmAlgo_t;         /* CUBLAS_GEMM_DEFAULT = -1 */

#define CCUDA_R_32F 0
#define CCUDA_R_16F 2
#define CCUDA_R_16BF 14
#define CCUBLAS_COMPUTE_32F 68
#define CCUBLAS_GEMM_DEFAULT (-1)

typedef struct {
    void *handle;
    void *ltHandle;
    cublasStatus_t (*cublasCreate)(cublasHandle_t *handle);
    cublasStatus_t (*cublasDestroy)(cublasHandle_t handle);
    /* cublasGetProperty(type, &value): type 0 major, 1 minor, 2 patch; needs no handle. */
    cublasStatus_t (*cublasGetProperty)(int type, int *value);
    cublasStatus_t (*cublasSetStream)(cublasHandle_t handle, CUstream stream);
    cublasStatus_t (*cublasGemmEx)(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                   int m, int n, int k, const void *alpha,
                                   const void *A, cudaDataType_t Atype, int lda,
                                   const void *B, cudaDataType_t Btype, int ldb, const void *beta,
                                   void *C, cudaDataType_t Ctype, int ldc,
                                   cublasComputeType_t computeType, cublasGemmAlgo_t algo);
    cublasStatus_t (*cublasGemmStridedBatchedEx)(cublasHandle_t handle, cublasOperation_t transa,
                                                 cublasOperation_t transb, int m, int n, int k, const void *alpha,
                                                 const void *A, cudaDataType_t Atype, int lda, long long strideA,
                                                 const void *B, cudaDataType_t Btype, int ldb, long long strideB,
                                                 const void *beta, void *C, cudaDataType_t Ctype, int ldc,
                                                 long long strideC, int batchCount,
                                                 cublasComputeType_t computeType, cublasGemmAlgo_t algo);
    size_t (*cublasLtGetVersion)(void);
} CCUDABLAS;

/* ---- Loading ------------------------------------------------------------------------------- */

/* dlopen(path, RTLD_NOW | RTLD_LOCAL). NULL on failure, with dlerror()'s text in err. */
void *ccuda_dlopen(const char *path, char *err, size_t errLength);
void ccuda_dlclose(void *handle);
/* The file a loaded library came from (dladdr on one of its symbols); NULL if unknown. */
const char *ccuda_library_path(void *handle, const char *symbol);

/* Each bind function fills *table from an open handle and returns 0, or returns -1 and writes
   the name of the first entry point that could not be resolved into err. */
int ccuda_bind_driver(void *handle, CCUDADriver *table, char *err, size_t errLength);
int ccuda_bind_nvrtc(void *handle, void *builtinsHandle, CCUDANVRTC *table, char *err, size_t errLength);
/* ltHandle may be NULL (cuBLASLt not found); cublasLtGetVersion then stays NULL. */
int ccuda_bind_cublas(void *handle, void *ltHandle, CCUDABLAS *table, char *err, size_t errLength);

#endif
