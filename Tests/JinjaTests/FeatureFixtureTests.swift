import Foundation
import Jinja
import Testing

/// One small template per language feature, rendered by jinja2 (Scripts/fixtures/template_features.py).
@Suite struct FeatureFixtureTests {
    @Test func everySnippetRendersLikeJinja2() throws {
        let text = try String(contentsOf: jinjaFixtures.appendingPathComponent("features.json"), encoding: .utf8)
        guard case .dict(let root) = try Value.parseJSON(text), case .dict(let ctx)? = root["context"],
              case .list(let cases)? = root["cases"] else {
            Issue.record("malformed features.json")
            return
        }
        var context: [String: Value] = [:]
        for (k, v) in ctx.pairs { context[k] = v }
        var options = TemplateOptions()
        options.fixedNow = fixtureNow
        #expect(cases.items.count > 50)
        for item in cases.items {
            guard case .dict(let c) = item, case .string(let source)? = c["source"] else { continue }
            if case .string(let expected)? = c["output"] {
                do {
                    let got = try Template(source, options: options).render(context)
                    #expect(got.utf8.elementsEqual(expected.utf8), "\(source)\n--- got ---\n\(got)\n--- expected ---\n\(expected)")
                } catch {
                    Issue.record("\(source): threw \(error)")
                }
            } else if case .string(let message)? = c["message"] {
                do {
                    let got = try Template(source, options: options).render(context)
                    Issue.record("\(source): expected an error like \(message.debugDescription), rendered \(got.debugDescription)")
                } catch let e as JinjaError {
                    let ours = e.description
                    let core = message.replacingOccurrences(of: "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).", with: "range too big")
                    #expect(ours.contains(core), "\(source): \(ours) vs jinja2's \(message)")
                }
            }
        }
    }
}
