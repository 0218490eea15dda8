import QwenCore
import Qwen2

// One decoder layer's training forward (filling its tape) and backward (consuming it), over the
// layer's weights from the WeightProvider and, in LoRA mode, the adapter in the parameter store.
// Every op is the pass's `backend` (a `TrainingBackend`; the CPU's kernels are in Qwen2/CPU/ and
// Training/CPU/): this file names the ops in order and holds no loops of its own.
// Residual stream: input → mid = input + o(attn(norm1(input))) → output = mid + down(mlp(norm2(mid))).
// Profile.time names the sections QWENFT_PROFILE=1 reports (QwenCore/Profile.swift); off, each is
// one branch.

extension Qwen2TrainingPass {
    /// Profile sections of a layer's forward: recomputation in backward is reported apart.
    struct ForwardSections {
        let gemm, lora, norm, rope, swiglu: String
        static let forward = ForwardSections(gemm: "fwd gemm", lora: "fwd lora", norm: "fwd norm+add", rope: "fwd rope",
                                             swiglu: "fwd swiglu")
        static let recompute = ForwardSections(gemm: "recompute gemm", lora: "recompute lora", norm: "recompute norm",
                                               rope: "recompute rope", swiglu: "recompute swiglu")
    }

    /// The LoRA pair of projection p in layer l, if it is a target: A (r,in), B (out,r) and grads.
    struct LoRAPair {
        let A, B: DevicePointer<Float>
        let dA, dB: DeviceMutablePointer<Float>
        let rows, cols: Int
    }

    func loraPair(_ l: Int, _ p: Projection) throws -> LoRAPair? {
        guard let spec = lora, spec.targets.contains(p) else { return nil }
        let a = try state.layout.require(TrainableParameters.loraName(layer: l, p, "A"))
        let b = try state.layout.require(TrainableParameters.loraName(layer: l, p, "B"))
        let s = p.shape(config)
        return LoRAPair(A: state.deviceParam(a).readOnly, B: state.deviceParam(b).readOnly, dA: state.deviceGrad(a),
                        dB: state.deviceGrad(b), rows: s.rows, cols: s.cols)
    }

    func dropout(_ l: Int, _ p: Projection, stream: UInt64, on: Bool) -> LoRADropout {
        let index = UInt64(Projection.allCases.firstIndex(of: p) ?? 0)
        return LoRADropout(p: on ? (lora?.dropout ?? 0) : 0, seed: dropoutSeed,
                           stream: (stream << 20) | (UInt64(l) << 3) | index)
    }

    /// `recompute`: the checkpointing pass in backward, which only refills the shared part of the
    /// tape. The attention's result (att, lse) is kept per layer, so attention is skipped; the
    /// layer's output (the next layer's kept input) is not needed again, so neither is the MLP's
    /// down projection — only its LoRA xa (a tape entry). What is recomputed comes from the same
    /// numbers by the same code: the same bits.
    func layerForward(_ l: Int, _ lw: LayerWeights, w: TrainingWorkspace, tape t: LayerTape,
                      stream: UInt64, dropoutOn: Bool, recompute: Bool = false) {
        let c = config, be = backend
        let B = w.B, T = w.T, N = w.N, C = c.hiddenSize, I = c.intermediateSize
        let NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        let input = w.layerInputs[l].readOnly, output = w.layerInputs[l + 1].pointer
        let section = recompute ? ForwardSections.recompute : .forward
        func linear(_ p: Projection, _ out: DeviceMutablePointer<Float>, _ inp: DevicePointer<Float>,
                    bias: UnsafePointer<Float>? = nil) {
            Profile.time(section.gemm) {
                be.linearForward(out: out, inp: inp, weight: lw.matrix(p), bias: bias, N: N, scratch: linearScratch, accumulate: false)
            }
            if let pair = try? loraPair(l, p), let spec = lora, let xa = t.loraXA[p] {
                let drop = dropout(l, p, stream: stream, on: dropoutOn)
                Profile.time(section.lora) {
                    be.loraForward(out: out, xa: xa.pointer, inp: inp, A: pair.A, B: pair.B, scale: spec.scale,
                                dropout: drop, dropped: w.dropped.pointer, N: N, C: pair.cols, OC: pair.rows, r: spec.rank)
                }
            }
        }
        Profile.time(section.norm) {
            be.rmsNormForward(out: w.ln.pointer, rstd: t.rstd1.pointer, inp: input, weight: lw.inputNorm, N: N, C: C, eps: c.rmsNormEps)
        }
        linear(.q, t.q.pointer, w.ln.readOnly, bias: lw.qBias)
        linear(.k, w.k.pointer, w.ln.readOnly, bias: lw.kBias)
        linear(.v, w.v.pointer, w.ln.readOnly, bias: lw.vBias)
        let positions = w.packed ? w.positions.readOnly : nil
        Profile.time(section.rope) {
            be.ropeForward(t.q.pointer, table: rope, N: N, T: T, H: NH, firstPosition: 0, positions: positions)
            be.ropeForward(w.k.pointer, table: rope, N: N, T: T, H: KVH, firstPosition: 0, positions: positions)
            be.kvStoreWrite(store: t.kStore.pointer, inp: w.k.readOnly, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
            be.kvStoreWrite(store: t.vStore.pointer, inp: w.v.readOnly, B: B, T: T, KVH: KVH, hd: hd, S: T, firstPosition: 0)
        }
        if !recompute {  // kept per layer under checkpointing (see above)
            Profile.time("fwd attention") {
                be.trainingAttentionForward(out: t.att.pointer, lse: t.lse.pointer, q: t.q.readOnly, kStore: t.kStore.readOnly,
                                        vStore: t.vStore.readOnly, keyMask: w.keyMask.readOnly,
                                        segments: w.packed ? w.segments.readOnly : nil, scratch: w.attScratch.pointer,
                                        B: B, T: T, NH: NH, KVH: KVH, hd: hd)
            }
        }
        linear(.o, w.tmp.pointer, t.att.readOnly)
        Profile.time(section.norm) {
            be.copy(t.mid.pointer, from: input, count: N * C)
            be.residualAdd(t.mid.pointer, w.tmp.readOnly, count: N * C)
            be.rmsNormForward(out: w.ln.pointer, rstd: t.rstd2.pointer, inp: t.mid.readOnly, weight: lw.postAttentionNorm,
                           N: N, C: C, eps: c.rmsNormEps)
        }
        linear(.gate, t.gate.pointer, w.ln.readOnly)
        linear(.up, t.up.pointer, w.ln.readOnly)
        if recompute {
            guard let pair = try? loraPair(l, .down), let spec = lora, let xa = t.loraXA[.down] else { return }
            Profile.time(section.swiglu) { be.swigluForwardFast(out: w.act.pointer, gate: t.gate.readOnly, up: t.up.readOnly, count: N * I) }
            let drop = dropout(l, .down, stream: stream, on: dropoutOn)
            Profile.time(section.lora) {
                be.loraProjectInput(xa: xa.pointer, inp: w.act.readOnly, A: pair.A, dropout: drop, dropped: w.dropped.pointer,
                                 N: N, C: pair.cols, r: spec.rank)
            }
            return
        }
        Profile.time(section.swiglu) { be.swigluForwardFast(out: w.act.pointer, gate: t.gate.readOnly, up: t.up.readOnly, count: N * I) }
        linear(.down, w.tmp.pointer, w.act.readOnly)
        Profile.time(section.norm) {
            be.copy(output, from: t.mid.readOnly, count: N * C)
            be.residualAdd(output, w.tmp.readOnly, count: N * C)
        }
    }

    /// dx (N,C), the gradient of the layer's output, becomes the gradient of its input; weight
    /// (full) or LoRA gradients are added into the state.
    func layerBackward(_ l: Int, _ lw: LayerWeights, w: TrainingWorkspace, tape t: LayerTape, stream: UInt64) throws {
        let c = config, be = backend
        let B = w.B, T = w.T, N = w.N, C = c.hiddenSize, I = c.intermediateSize
        let NH = c.numAttentionHeads, KVH = c.numKeyValueHeads, hd = c.headDim
        let dx = w.dx.pointer, dln = w.dln.pointer
        func g(_ suffix: String) throws -> DeviceMutablePointer<Float>? {
            try fullGrad(TrainableParameters.layerName(l, suffix))
        }
        /// Base linear backward then the adapter's: dinp written (or added to), weight grads added.
        func linearBack(_ p: Projection, dinp: DeviceMutablePointer<Float>, accumulate: Bool,
                        dout: DevicePointer<Float>, inp: DevicePointer<Float>, hasBias: Bool = false) throws {
            let dweight = try g(p.modulePath + ".weight"), dbias = hasBias ? try g(p.modulePath + ".bias") : nil
            Profile.time("bwd gemm") {
                be.linearBackward(dinp: dinp, dweight: dweight, dbias: dbias, dout: dout, inp: inp,
                               weight: lw.matrix(p), N: N, accumulateInput: accumulate, scratch: backwardScratch)
            }
            if let pair = try loraPair(l, p), let spec = lora, let xa = t.loraXA[p] {
                let drop = dropout(l, p, stream: stream, on: true)
                Profile.time("bwd lora") {
                    be.loraBackward(dinp: dinp, dA: pair.dA, dB: pair.dB, dout: dout, inp: inp, xa: xa.readOnly,
                                 A: pair.A, B: pair.B, scale: spec.scale, dropout: drop,
                                 dxa: w.dxa.pointer, dropped: w.dropped.pointer, N: N, C: pair.cols, OC: pair.rows, r: spec.rank)
                }
            }
        }

        // MLP: dx is d output = d mlpOut (and, through the residual, d mid).
        Profile.time("bwd swiglu") { be.swigluForwardFast(out: w.act.pointer, gate: t.gate.readOnly, up: t.up.readOnly, count: N * I) }
        try linearBack(.down, dinp: w.dact.pointer, accumulate: false, dout: dx.readOnly, inp: w.act.readOnly)
        Profile.time("bwd swiglu") {
            be.swigluBackward(dgate: w.dgate.pointer, dup: w.dup.pointer, dout: w.dact.readOnly,
                           gate: t.gate.readOnly, up: t.up.readOnly, count: N * I)
        }
        Profile.time("bwd norm") {  // the MLP's normed input again (not kept: see LayerTape)
            be.rmsNormForward(out: w.ln.pointer, rstd: t.rstd2.pointer, inp: t.mid.readOnly, weight: lw.postAttentionNorm,
                           N: N, C: C, eps: c.rmsNormEps)
        }
        try linearBack(.gate, dinp: dln, accumulate: false, dout: w.dgate.readOnly, inp: w.ln.readOnly)
        try linearBack(.up, dinp: dln, accumulate: true, dout: w.dup.readOnly, inp: w.ln.readOnly)
        let dpost = try g("post_attention_layernorm.weight")
        Profile.time("bwd norm") {
            be.rmsNormBackward(dinp: dx, dweight: dpost, dout: dln.readOnly,
                            inp: t.mid.readOnly, weight: lw.postAttentionNorm, rstd: t.rstd2.readOnly, N: N, C: C)
        }

        // Attention: dx is now d mid = d attProj (and, through the residual, d input).
        try linearBack(.o, dinp: w.datt.pointer, accumulate: false, dout: dx.readOnly, inp: t.att.readOnly)
        Profile.time("bwd attention") {
            be.trainingAttentionBackward(dq: w.dq.pointer, dk: w.dk.pointer, dv: w.dv.pointer, dout: w.datt.readOnly,
                                     q: t.q.readOnly, kStore: t.kStore.readOnly, vStore: t.vStore.readOnly, out: t.att.readOnly,
                                     lse: t.lse.readOnly, keyMask: w.keyMask.readOnly,
                                     segments: w.packed ? w.segments.readOnly : nil, scratchD: w.attD.pointer,
                                     scratch: w.attScratch.pointer, B: B, T: T, NH: NH, KVH: KVH, hd: hd)
        }
        let positions = w.packed ? w.positions.readOnly : nil
        Profile.time("bwd rope") {
            be.ropeBackward(w.dq.pointer, table: rope, N: N, T: T, H: NH, firstPosition: 0, positions: positions)
            be.ropeBackward(w.dk.pointer, table: rope, N: N, T: T, H: KVH, firstPosition: 0, positions: positions)
        }
        Profile.time("bwd norm") {  // the attention's normed input again
            be.rmsNormForward(out: w.ln.pointer, rstd: t.rstd1.pointer, inp: w.layerInputs[l].readOnly, weight: lw.inputNorm,
                           N: N, C: C, eps: c.rmsNormEps)
        }
        try linearBack(.q, dinp: dln, accumulate: false, dout: w.dq.readOnly, inp: w.ln.readOnly, hasBias: true)
        try linearBack(.k, dinp: dln, accumulate: true, dout: w.dk.readOnly, inp: w.ln.readOnly, hasBias: true)
        try linearBack(.v, dinp: dln, accumulate: true, dout: w.dv.readOnly, inp: w.ln.readOnly, hasBias: true)
        let dinput = try g("input_layernorm.weight")
        Profile.time("bwd norm") {
            be.rmsNormBackward(dinp: dx, dweight: dinput, dout: dln.readOnly,
                            inp: w.layerInputs[l].readOnly, weight: lw.inputNorm, rstd: t.rstd1.readOnly, N: N, C: C)
        }
    }
}
