import Foundation
import Testing
@testable import Qwen2

@Suite struct GenerationTests {
    /// KV-cache decoding gives the same 64 ids as transformers' generate(do_sample=False).
    @Test(arguments: ForwardParityTests.models)
    func greedyMatchesTransformersGenerate(name: String) throws {
        let e = try ModelExpectations.load(name)
        let generator = Generator(model: try fixtureModel(name), capacity: 16)  // grows while decoding
        var sampler = Sampler(parameters: SamplingParameters(greedy: true), seed: 0)
        let r = try generator.generate(prompt: e.greedy.prompt, maxNewTokens: 64, sampler: &sampler, eos: [])
        #expect(r.tokens == e.greedy.new_tokens)
        #expect(r.finishReason == "length")
        // transformers applies repetition_penalty in greedy decoding too.
        generator.reset()
        var penalized = Sampler(parameters: SamplingParameters(greedy: true, repetitionPenalty: 1.05), seed: 0)
        let p = try generator.generate(prompt: e.greedy.prompt, maxNewTokens: 64, sampler: &penalized, eos: [])
        #expect(p.tokens == e.greedy.new_tokens_repetition_penalty_1_05)
    }

    @Test func secondTurnReusesTheCachedPrefixAndAgrees() throws {
        let e = try ModelExpectations.load("tied-mha")
        let generator = Generator(model: try fixtureModel("tied-mha"))
        var sampler = Sampler(parameters: SamplingParameters(greedy: true), seed: 0)
        _ = try generator.generate(prompt: Array(e.greedy.prompt.prefix(5)), maxNewTokens: 3, sampler: &sampler, eos: [])
        let r = try generator.generate(prompt: e.greedy.prompt, maxNewTokens: 64, sampler: &sampler, eos: [])
        #expect(r.prefilledTokens == e.greedy.prompt.count - 5)
        #expect(r.tokens == e.greedy.new_tokens)
    }

    @Test func stopsAtEos() throws {
        let e = try ModelExpectations.load("tied-mha")
        let generator = Generator(model: try fixtureModel("tied-mha"))
        var sampler = Sampler(parameters: SamplingParameters(greedy: true), seed: 0)
        let stop = e.greedy.new_tokens[5]
        let first = e.greedy.new_tokens.firstIndex(of: stop)!
        var streamed: [Int32] = []
        let r = try generator.generate(prompt: e.greedy.prompt, maxNewTokens: 64, sampler: &sampler, eos: [stop]) {
            streamed.append($0); return true
        }
        #expect(r.tokens == Array(e.greedy.new_tokens[...first]))
        #expect(streamed == r.tokens)
        #expect(r.finishReason == "eos")
    }

    @Test func seededSamplingIsReproducible() throws {
        let e = try ModelExpectations.load("untied-gqa2")
        let params = SamplingParameters(greedy: false, temperature: 0.9, topK: 40, topP: 0.95, minP: 0.01, repetitionPenalty: 1.1)
        func run(_ seed: UInt64) throws -> [Int32] {
            let g = Generator(model: try fixtureModel("untied-gqa2"))
            var s = Sampler(parameters: params, seed: seed)
            return try g.generate(prompt: e.greedy.prompt, maxNewTokens: 20, sampler: &s, eos: []).tokens
        }
        #expect(try run(7) == run(7))
        #expect(try run(7) != run(8))
    }

    @Test func promptLongerThanThePositionLimitIsRefused() throws {
        let generator = Generator(model: try fixtureModel("tied-mha"))  // max_position_embeddings 128
        var sampler = Sampler(parameters: SamplingParameters(), seed: 0)
        #expect(throws: Qwen2Error.self) {
            try generator.generate(prompt: [Int32](repeating: 5, count: 200), maxNewTokens: 4, sampler: &sampler, eos: [])
        }
    }
}

@Suite struct EvalTests {
    /// Σ token losses / count over the batch, one record at a time and as a padded batch.
    @Test(arguments: ForwardParityTests.models)
    func lossAndAccuracyMatchTransformers(name: String) throws {
        let e = try ModelExpectations.load(name)
        let model = try fixtureModel(name)
        var total = TokenScores()
        for (row, mask) in zip(e.input_ids, e.attention_mask) {
            let n = mask.reduce(0, +)
            let ids = Array(row.prefix(Int(n)))
            let cache = KVCache(config: model.config, batch: 1, capacity: ids.count)
            let hidden = try model.forward(ids: ids, B: 1, T: ids.count, cache: cache)
            total.add(model.score(hidden: hidden, targets: Array(ids.dropFirst()) + [-100]))
        }
        #expect(total.count == e.eval.tokens)
        let loss = total.lossSum / Double(total.count)
        #expect(abs(loss - e.eval.loss) / e.eval.loss < 1e-5, "loss \(loss) vs \(e.eval.loss)")
        #expect(abs(Double(total.correct) / Double(total.count) - e.eval.token_accuracy) < 1e-9)
    }
}

@Suite struct SamplerTests {
    @Test func repetitionPenaltyDividesPositiveAndMultipliesNegative() {
        var s: [Float] = [2, -2, 1]
        applyRepetitionPenalty(&s, history: [0, 1, 0], penalty: 2)
        #expect(s == [1, -4, 1])
    }

    @Test func topKKeepsTiesAtTheThreshold() {
        var s: [Float] = [1, 3, 3, 2]
        applyTopK(&s, k: 2)
        #expect(s == [-.infinity, 3, 3, -.infinity])
    }

    @Test func topPKeepsTheSmallestSetAboveP() {
        // probabilities ≈ 0.643, 0.237, 0.087, 0.032
        var s: [Float] = [3, 2, 1, 0]
        applyTopP(&s, p: 0.8)
        #expect(s == [3, 2, -.infinity, -.infinity])
        var one: [Float] = [3, 2, 1, 0]
        applyTopP(&one, p: 0.1)
        #expect(one == [3, -.infinity, -.infinity, -.infinity])
    }

    @Test func minPDropsUnlikelyTokens() {
        var s: [Float] = [3, 2, 0]
        applyMinP(&s, minP: 0.2)  // p/pmax: 1, 0.37, 0.05
        #expect(s == [3, 2, -.infinity])
    }

    @Test func badParametersAreRefused() {
        #expect(throws: Qwen2Error.self) { try SamplingParameters(greedy: false, temperature: 0).validate() }
        #expect(throws: Qwen2Error.self) { try SamplingParameters(greedy: false, topP: 1.5).validate() }
    }
}
