// NF4 dequantisation, bitsandbytes layout. CPU counterpart: Sources/Qwen2/NF4.swift.
// A weight flattened row-major in blocks of `blocksize`; two 4-bit codes per byte, the even
// element in the high nibble; W[e] = code[c_e] · absmax[e / blocksize] in fp32.

// bitsandbytes.functional.get_4bit_type("nf4"), as fp32 bit patterns.
__constant__ unsigned kNF4Code[16] = {
    0xBF800000u, 0xBF3239B1u, 0xBF066B30u, 0xBECA32A0u, 0xBE91A24Du, 0xBE3D353Fu, 0xBDBA7871u, 0x00000000u,
    0x3DA2FAFFu, 0x3E24CAE3u, 0x3E7C04DDu, 0x3EAD033Au, 0x3EE1A4B8u, 0x3F1007ABu, 0x3F3913B3u, 0x3F800000u,
};

// Double quantisation: absmax (count) = map[codes[i]] · nested[i / 256] + offset, rounded as
// bitsandbytes (a product, then a sum). map (256) is the file's 8-bit map.
extern "C" __global__ void nf4_dequantize_absmax(float *absmax, const u8 *codes, const float *nested,
                                                 const float *map, float offset, i64 count) {
    FOR_EACH(i, count) absmax[i] = __fadd_rn(__fmul_rn(map[codes[i]], nested[i / 256]), offset);
}

// out (count elements of outDtype: F32, BF16 or F16) = elements e0 ..< e0+count of the NF4 tensor.
extern "C" __global__ void nf4_dequantize(void *out, int outDtype, const u8 *packed, const float *absmax,
                                          int blocksize, i64 e0, i64 count) {
    FOR_EACH(o, count) {
        i64 e = e0 + o;
        u8 byte = packed[e >> 1];
        unsigned c = (e & 1) == 0 ? (byte >> 4) : (byte & 0xFu);
        store_from_f32(out, outDtype, o, __fmul_rn(__uint_as_float(kNF4Code[c]), absmax[e / blocksize]));
    }
}
