import CCUDA

/// A cuBLAS handle on the current context, and the three row-major products of the `Backend`
/// protocol (nn, nt, tn) mapped onto cuBLAS's column-major GEMM: a row-major (r,c) matrix is the
/// column-major (c,r) one, so C (M,N) = op(A)·op(B) is computed as Cᵀ (N,M) = op(B)ᵀ·op(A)ᵀ.
public final class CUBLASHandle: @unchecked Sendable {
    public let library: CUBLASLibrary
    let handle: cublasHandle_t

    /// Creates the handle on the context current on this thread.
    public init(_ library: CUBLASLibrary) throws {
        self.library = library
        var h: cublasHandle_t?
        let status = library.api.cublasCreate!(&h)
        guard status == 0, let h else { throw CUDAError.cublas(call: "cublasCreate", status: status) }
        handle = h
    }

    deinit { _ = library.api.cublasDestroy!(handle) }

    /// Element types of A and B (C is always fp32, the accumulation fp32).
    public enum InputType: Int32, Sendable {
        case f32 = 0    // CUDA_R_32F
        case f16 = 2    // CUDA_R_16F
        case bf16 = 14  // CUDA_R_16BF
    }

    /// Row-major C (M,N) = alpha · op(A) · op(B) + beta · C, with
    /// A stored (M,K) or, when `transA`, (K,M); B stored (K,N) or, when `transB`, (N,K).
    /// nn: (false, false), nt: (false, true), tn: (true, false) as GEMM.nn/nt/tn.
    public func gemm(transA: Bool, transB: Bool, M: Int, N: Int, K: Int,
                     A: CUdeviceptr, B: CUdeviceptr, C: CUdeviceptr, inputType: InputType = .f32,
                     alpha: Float = 1, beta: Float = 0) throws {
        var alpha = alpha, beta = beta
        let ldb = Int32(transB ? K : N), lda = Int32(transA ? M : K)
        let status = library.api.cublasGemmEx!(handle, transB ? 1 : 0, transA ? 1 : 0,
                                               Int32(N), Int32(M), Int32(K), &alpha,
                                               UnsafeRawPointer(bitPattern: UInt(B)), inputType.rawValue, ldb,
                                               UnsafeRawPointer(bitPattern: UInt(A)), inputType.rawValue, lda, &beta,
                                               UnsafeMutableRawPointer(bitPattern: UInt(C)), CCUDA_R_32F, Int32(N),
                                               CCUBLAS_COMPUTE_32F, CCUBLAS_GEMM_DEFAULT)
        guard status == 0 else { throw CUDAError.cublas(call: "cublasGemmEx(\(M)×\(N)×\(K))", status: status) }
    }
}
