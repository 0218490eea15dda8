/* Run-time loading of the CUDA driver, NVRTC and cuBLAS: see include/ccuda.h. */
#define _GNU_SOURCE
#include "ccuda.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static void copy_error(char *err, size_t errLength, const char *text) {
    if (err == NULL || errLength == 0) return;
    snprintf(err, errLength, "%s", text ? text : "unknown dlopen error");
}

static void *open_with(const char *path, int flags, char *err, size_t errLength) {
    dlerror();
    void *h = dlopen(path, flags);
    if (h == NULL) copy_error(err, errLength, dlerror());
    return h;
}

void *ccuda_dlopen(const char *path, char *err, size_t errLength) {
    return open_with(path, RTLD_NOW | RTLD_LOCAL, err, errLength);
}

void ccuda_dlclose(void *handle) {
    if (handle != NULL) dlclose(handle);
}

const char *ccuda_library_path(void *handle, const char *symbol) {
    void *address = dlsym(handle, symbol);
    Dl_info info;
    if (address == NULL || dladdr(address, &info) == 0) return NULL;
    return info.dli_fname;
}

/* ---- Driver ---------------------------------------------------------------------------------- */

typedef CUresult (*GetProcAddressV2)(const char *symbol, void **pfn, int cudaVersion,
                                     unsigned long long flags, int *symbolStatus);
typedef CUresult (*GetProcAddressV1)(const char *symbol, void **pfn, int cudaVersion,
                                     unsigned long long flags);

/* Resolves `name` at CCUDA_DRIVER_ABI through cuGetProcAddress (v2 on CUDA 12+ drivers, v1 on
   11.3+), falling back to dlsym of the versioned export (`name_v2`) and then the bare one. */
static void *driver_symbol(void *handle, GetProcAddressV2 v2, GetProcAddressV1 v1,
                           const char *name, const char *versionedExport) {
    void *fn = NULL;
    if (v2 != NULL) {
        int status = -1;
        if (v2(name, &fn, CCUDA_DRIVER_ABI, 0, &status) == 0 && status == 0 && fn != NULL) return fn;
        fn = NULL;
    } else if (v1 != NULL) {
        if (v1(name, &fn, CCUDA_DRIVER_ABI, 0) == 0 && fn != NULL) return fn;
        fn = NULL;
    }
    if (versionedExport != NULL && (fn = dlsym(handle, versionedExport)) != NULL) return fn;
    return dlsym(handle, name);
}

#define BIND_DRIVER(field, versioned)                                                         \
    do {                                                                                      \
        void *fn = driver_symbol(handle, v2, v1, #field, versioned);                          \
        if (fn == NULL) { copy_error(err, errLength, #field); return -1; }                    \
        memcpy(&t.field, &fn, sizeof(fn));                                                    \
    } while (0)

#define BIND_EXPORT(table, field, symbol)                                                     \
    do {                                                                                      \
        void *fn = dlsym(handle, symbol);                                                     \
        if (fn == NULL) { copy_error(err, errLength, symbol); return -1; }                    \
        memcpy(&table.field, &fn, sizeof(fn));                                                \
    } while (0)

int ccuda_bind_driver(void *handle, CCUDADriver *table, char *err, size_t errLength) {
    CCUDADriver t;
    memset(&t, 0, sizeof(t));
    t.handle = handle;
    GetProcAddressV2 v2 = NULL;
    GetProcAddressV1 v1 = NULL;
    void *p = dlsym(handle, "cuGetProcAddress_v2");
    if (p != NULL) memcpy(&v2, &p, sizeof(p));
    else if ((p = dlsym(handle, "cuGetProcAddress")) != NULL) memcpy(&v1, &p, sizeof(p));
    /* These four are exported unversioned by every driver and needed before anything else. */
    BIND_EXPORT(t, cuInit, "cuInit");
    BIND_EXPORT(t, cuDriverGetVersion, "cuDriverGetVersion");
    BIND_EXPORT(t, cuGetErrorName, "cuGetErrorName");
    BIND_EXPORT(t, cuGetErrorString, "cuGetErrorString");
    BIND_DRIVER(cuDeviceGetCount, NULL);
    BIND_DRIVER(cuDeviceGet, NULL);
    BIND_DRIVER(cuDeviceGetName, NULL);
    BIND_DRIVER(cuDeviceGetAttribute, NULL);
    BIND_DRIVER(cuDeviceTotalMem, "cuDeviceTotalMem_v2");
    BIND_DRIVER(cuDevicePrimaryCtxRetain, NULL);
    BIND_DRIVER(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
    BIND_DRIVER(cuCtxSetCurrent, NULL);
    BIND_DRIVER(cuCtxSynchronize, NULL);
    BIND_DRIVER(cuMemGetInfo, "cuMemGetInfo_v2");
    BIND_DRIVER(cuMemAlloc, "cuMemAlloc_v2");
    BIND_DRIVER(cuMemFree, "cuMemFree_v2");
    BIND_DRIVER(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
    BIND_DRIVER(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
    BIND_DRIVER(cuMemcpyDtoD, "cuMemcpyDtoD_v2");
    BIND_DRIVER(cuMemsetD32, "cuMemsetD32_v2");
    BIND_DRIVER(cuModuleLoadData, NULL);
    BIND_DRIVER(cuModuleUnload, NULL);
    BIND_DRIVER(cuModuleGetFunction, NULL);
    BIND_DRIVER(cuFuncSetAttribute, NULL);
    BIND_DRIVER(cuLaunchKernel, NULL);
    BIND_DRIVER(cuStreamSynchronize, NULL);
    *table = t;
    return 0;
}

/* ---- NVRTC ----------------------------------------------------------------------------------- */

int ccuda_bind_nvrtc(void *handle, void *builtinsHandle, CCUDANVRTC *table, char *err, size_t errLength) {
    CCUDANVRTC t;
    memset(&t, 0, sizeof(t));
    t.handle = handle;
    t.builtinsHandle = builtinsHandle;
    BIND_EXPORT(t, nvrtcVersion, "nvrtcVersion");
    BIND_EXPORT(t, nvrtcGetErrorString, "nvrtcGetErrorString");
    BIND_EXPORT(t, nvrtcCreateProgram, "nvrtcCreateProgram");
    BIND_EXPORT(t, nvrtcDestroyProgram, "nvrtcDestroyProgram");
    BIND_EXPORT(t, nvrtcCompileProgram, "nvrtcCompileProgram");
    BIND_EXPORT(t, nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize");
    BIND_EXPORT(t, nvrtcGetProgramLog, "nvrtcGetProgramLog");
    BIND_EXPORT(t, nvrtcGetCUBINSize, "nvrtcGetCUBINSize");
    BIND_EXPORT(t, nvrtcGetCUBIN, "nvrtcGetCUBIN");
    *table = t;
    return 0;
}

/* ---- cuBLAS ---------------------------------------------------------------------------------- */

int ccuda_bind_cublas(void *handle, void *ltHandle, CCUDABLAS *table, char *err, size_t errLength) {
    CCUDABLAS t;
    memset(&t, 0, sizeof(t));
    t.handle = handle;
    t.ltHandle = ltHandle;
    BIND_EXPORT(t, cublasCreate, "cublasCreate_v2");
    BIND_EXPORT(t, cublasDestroy, "cublasDestroy_v2");
    BIND_EXPORT(t, cublasGetProperty, "cublasGetProperty");
    BIND_EXPORT(t, cublasSetStream, "cublasSetStream_v2");
    BIND_EXPORT(t, cublasGemmEx, "cublasGemmEx");
    BIND_EXPORT(t, cublasGemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
    if (ltHandle != NULL) {
        void *fn = dlsym(ltHandle, "cublasLtGetVersion");
        if (fn != NULL) memcpy(&t.cublasLtGetVersion, &fn, sizeof(fn));
    }
    *table = t;
    return 0;
}
