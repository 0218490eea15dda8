import Foundation
import Testing
@testable import Training

private struct ScheduleFixture: Decodable {
    struct Kwargs: Decodable {
        let num_cycles, min_lr, min_lr_rate: Double?
        let warmup_min_lr, warmup_max_lr, warmup_min_ratio, cos_min_ratio: Double?
        let warmup_num_steps: Int?
        let warmup_type: String?
    }
    struct Case: Decodable {
        let type: String
        let base_lr: Double?
        let warmup_steps: Int?
        let total_steps: Int
        let kwargs: Kwargs
        let lrs: [Double]
    }
    struct Warmup: Decodable { let warmup_steps: Double; let total_steps: Int; let result: Int }
    let cases: [Case]
    let warmups: [Warmup]
}

@Suite struct LRScheduleTests {
    /// Every step's LR equals transformers' (and the DeepSpeed transcription's) exactly.
    @Test func matchesTransformersAndDeepSpeed() throws {
        let fx = try loadFixture("schedules.json", as: ScheduleFixture.self)
        for c in fx.cases {
            let scheduler: LRScheduler
            if let t = LRSchedulerType(rawValue: c.type) {
                let kw = LRSchedulerKwargs(numCycles: c.kwargs.num_cycles, minLR: c.kwargs.min_lr, minLRRate: c.kwargs.min_lr_rate)
                let s = try LRSchedule.transformers(t, warmupSteps: c.warmup_steps!, totalSteps: c.total_steps,
                                                    baseLR: c.base_lr!, kwargs: kw)
                scheduler = LRScheduler(baseLR: c.base_lr!, schedule: s)
            } else if c.type == "WarmupCosineLR" {
                let p = DeepSpeedWarmupCosine(totalSteps: c.total_steps, warmupMinRatio: c.kwargs.warmup_min_ratio!,
                                              warmupSteps: c.kwargs.warmup_num_steps!, cosMinRatio: c.kwargs.cos_min_ratio!,
                                              kind: DeepSpeedWarmup.Kind(rawValue: c.kwargs.warmup_type!)!)
                scheduler = LRScheduler(baseLR: c.base_lr!, schedule: .deepSpeedWarmupCosine(p))
            } else {
                let p = DeepSpeedWarmup(minLR: c.kwargs.warmup_min_lr!, maxLR: c.kwargs.warmup_max_lr!,
                                        warmupSteps: c.kwargs.warmup_num_steps!,
                                        kind: DeepSpeedWarmup.Kind(rawValue: c.kwargs.warmup_type!)!)
                let s: LRSchedule = c.type == "WarmupDecayLR" ? .deepSpeedWarmupDecay(p, totalSteps: c.total_steps) : .deepSpeedWarmup(p)
                scheduler = LRScheduler(baseLR: p.maxLR, schedule: s)
            }
            for (k, expected) in c.lrs.enumerated() {
                let got = scheduler.learningRate(afterSteps: k)
                #expect(got == expected, "\(c.type) after \(k) steps: \(got) vs \(expected)")
            }
        }
    }

    @Test func warmupStepsAsTransformers() throws {
        let fx = try loadFixture("schedules.json", as: ScheduleFixture.self)
        for w in fx.warmups {
            #expect(LRScheduler.warmupSteps(warmupSteps: w.warmup_steps, warmupRatio: 0, totalSteps: w.total_steps) == w.result,
                    "warmup_steps \(w.warmup_steps) of \(w.total_steps)")
        }
        // transformers 4.x warmup_ratio: ceil(ratio · total), used when warmup_steps is 0.
        #expect(LRScheduler.warmupSteps(warmupSteps: 0, warmupRatio: 0.03, totalSteps: 50) == 2)
        #expect(LRScheduler.warmupSteps(warmupSteps: 4, warmupRatio: 0.5, totalSteps: 50) == 4)
    }

    @Test func minLRNeedsExactlyOneKwarg() {
        #expect(throws: TrainingError.self) {
            try LRSchedule.transformers(.cosineWithMinLR, warmupSteps: 0, totalSteps: 10, baseLR: 1e-4)
        }
        #expect(throws: TrainingError.self) {
            try LRSchedule.transformers(.cosineWithMinLR, warmupSteps: 0, totalSteps: 10, baseLR: 1e-4,
                                        kwargs: .init(minLR: 1e-6, minLRRate: 0.1))
        }
    }
}
