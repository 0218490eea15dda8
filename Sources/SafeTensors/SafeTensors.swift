// SafeTensors: read and write Hugging Face safetensors files, single or sharded.
//
// Reading (zero-copy, everything validated first; errors are `SafeTensorsError`, naming the
// file and tensor):
//
//     let store = try SafeTensorsStore(path: "model-folder")      // file, folder, or index.json
//     let w = try store.tensor("model.embed_tokens.weight")        // TensorView
//     w.name, w.dtype (QwenCore.DType), w.shape, w.bytes           // raw little-endian bytes, in place
//     w.f32Pointer                                                 // UnsafePointer<Float>? when F32 (no copy)
//     w.halfPointer                                                // UnsafePointer<UInt16>? when BF16/F16
//     try w.copyFloats(into: dst)  /  try w.floatBuffer()  /  try w.floats()   // widened to fp32
//     let file = try SafeTensorsFile(path: "x.safetensors")        // one file: .tensors, .metadata
//
// Writing (atomic: temp file + rename; bytes identical to Python's `save_file`):
//
//     try SafeTensorsWriter.write([
//         TensorToWrite(name: "a", shape: [2, 3], floats: values, as: .bf16),    // narrows like torch
//         TensorToWrite(name: "b", shape: [4], pointer: p, as: .f32),            // no copy taken
//         TensorToWrite(copying: view),  TensorToWrite(converting: view, to: .f16),
//         TensorToWrite(name: "ids", dtype: .i64, shape: [3], bytes: raw),
//     ], to: "out.safetensors")                                    // metadata {"format":"pt"} by default
//     try SafeTensorsWriter.writeSharded(tensors, toFolder: dir, maxShardSize: parseByteSize("5GB")!)
//
// `inspectModel(path:)` summarises a file or model folder (what `qwenft inspect` prints).
