import Foundation
import QwenCore
import Testing
@testable import Training

/// DynamicLossScaler against DeepSpeed's own class on scripted overflow sequences
/// (Fixtures/loss_scaler.json from Scripts/fixtures/loss_scaler.py).
@Suite struct DynamicLossScalerTests {
    struct Fixture: Decodable {
        struct Step: Decodable {
            var overflow: Bool
            var scale_used: Double
            var skipped: Bool
            var scale_after: Double
            var hysteresis_after: Int
        }
        struct Failure: Decodable { var step: Int; var message: String }
        struct Case: Decodable {
            var name: String
            var steps: [Step]
            var error: Failure?
        }
        var source: String
        var cases: [Case]
    }

    @Test func matchesDeepSpeedStepByStep() throws {
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: fixtureURL("loss_scaler.json")))
        #expect(fixture.source.hasPrefix("deepspeed 0.19"))
        #expect(fixture.cases.count >= 7)
        let text = try String(contentsOf: fixtureURL("loss_scaler.json"), encoding: .utf8)
        let raw = try JSONValue.parse(text)
        guard case let .array(rawCases)? = raw["cases"] else { throw SkipError("fixture has no cases") }
        for (c, rawCase) in zip(fixture.cases, rawCases) {
            let block = try #require(rawCase["config"])
            var scaler = DynamicLossScaler(try DynamicLossScaler.Config(fp16Block: block, source: "fixture"))
            for (i, step) in c.steps.enumerated() {
                #expect(scaler.scale == step.scale_used, "\(c.name) step \(i): scale used")
                try scaler.update(overflow: step.overflow)
                #expect(scaler.scale == step.scale_after, "\(c.name) step \(i): scale after")
                #expect(scaler.hysteresis == step.hysteresis_after, "\(c.name) step \(i): hysteresis after")
            }
            if let failure = c.error {
                #expect(failure.step == c.steps.count)
                #expect(throws: TrainingError.lossScaleAtMinimum(scale: scaler.scale, iteration: c.steps.count)) {
                    try scaler.update(overflow: true)
                }
            }
        }
    }

    @Test func defaultsAreDeepSpeeds() throws {
        let s = DynamicLossScaler()
        #expect(s.scale == 65536)
        #expect(s.hysteresis == 2)
        #expect(s.config == (try DynamicLossScaler.Config(fp16Block: .object([]), source: "x")))
    }

    @Test func badFP16BlocksNameTheKey() {
        let cases: [(String, JSONValue, String)] = [
            ("loss_scale_window", .int(0), "deepspeed.fp16.loss_scale_window"),
            ("min_loss_scale", .double(-1), "deepspeed.fp16.min_loss_scale"),
            ("hysteresis", .double(1.5), "deepspeed.fp16.hysteresis"),
            ("consecutive_hysteresis", .int(1), "deepspeed.fp16.consecutive_hysteresis"),
            ("initial_scale_power", .string("16"), "deepspeed.fp16.initial_scale_power"),
        ]
        for (key, value, named) in cases {
            #expect {
                _ = try DynamicLossScaler.Config(fp16Block: .object([(key, value)]), source: "ds.json")
            } throws: { error in
                "\(error)".contains(named) && "\(error)".contains("ds.json")
            }
        }
    }
}

struct SkipError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// AdamWScalars.forStep (what the CUDA adamw_step kernel is fed) gives the bits AdamW.step gives.
@Suite struct AdamWScalarsTests {
    @Test func forStepMatchesAdamWStep() throws {
        let layout = try ParameterLayout([("w", [37])])
        let hyper = AdamWHyperparameters(beta1: 0.9, beta2: 0.95, eps: 1e-6, weightDecay: 0.1)
        let optimizer = AdamW(layout: layout, hyper: hyper)
        let n = 37  // the entry (the layout pads it to its alignment)
        let params = CPUBackend().upload((0 ..< layout.count).map { Float(sin(Double($0))) })
        let grads = CPUBackend().upload((0 ..< layout.count).map { Float(cos(Double($0) * 0.7)) * 0.01 })
        var p = Array(params.toArray().prefix(n)), m = [Float](repeating: 0, count: n), v = m
        for step in 1 ... 4 {
            let lr = 1e-3 / Double(step)
            optimizer.step(params: params.pointer, grads: grads.readOnly, lr: lr)
            adamwUpdate(params: &p, grads: grads.host, m: &m, v: &v, count: n, decay: true,
                        AdamWScalars.forStep(step, lr: lr, hyper: hyper))
            #expect(params.toArray().prefix(n).map(\.bitPattern) == p.map(\.bitPattern), "step \(step)")
        }
        #expect(Array(optimizer.m.toArray().prefix(n)) == m && Array(optimizer.v.toArray().prefix(n)) == v)
    }
}

@Suite struct LossScalingTests {
    @Test func fromTheDeepSpeedFP16Block() throws {
        func parse(_ text: String) throws -> LossScaling { try LossScaling(deepSpeed: try JSONValue.parse(text), source: "ds.json") }
        #expect(try parse("{}") == .off)
        #expect(try parse(#"{"fp16": {"enabled": false, "loss_scale": 0}}"#) == .off)
        #expect(try parse(#"{"fp16": {"enabled": true, "loss_scale": 128}}"#) == .fixed(128))
        #expect(try parse(#"{"fp16": {"enabled": true}}"#) == .dynamic(.init()))
        #expect(try parse(#"{"fp16": {"enabled": true, "loss_scale": 0, "initial_scale_power": 12, "loss_scale_window": 500, "hysteresis": 1, "consecutive_hysteresis": true, "min_loss_scale": 0.5}}"#)
            == .dynamic(.init(initialScalePower: 12, lossScaleWindow: 500, hysteresis: 1, consecutiveHysteresis: true, minLossScale: 0.5)))
        #expect { try parse(#"{"fp16": {"enabled": true, "loss_scale": -1}}"#) } throws: { "\($0)".contains("deepspeed.fp16.loss_scale") }
        #expect { try parse(#"{"fp16": {"enabled": "yes"}}"#) } throws: { "\($0)".contains("deepspeed.fp16.enabled") }
    }
}
