import Foundation
import Jinja
import Testing

/// 400 random mixes of text, whitespace control, trim_blocks/lstrip_blocks, comments and raw
/// blocks, rendered by jinja2 in both environments (Scripts/fixtures/template_whitespace.py).
@Suite struct WhitespaceFixtureTests {
    @Test func lexerMatchesJinja2OnRandomTemplates() throws {
        let text = try String(contentsOf: jinjaFixtures.appendingPathComponent("whitespace.json"), encoding: .utf8)
        guard case .list(let cases) = try Value.parseJSON(text) else {
            Issue.record("malformed whitespace.json")
            return
        }
        #expect(cases.items.count == 400)
        for item in cases.items {
            guard case .dict(let c) = item, case .string(let source)? = c["source"] else { continue }
            for (envName, options) in [("transformers", TemplateOptions()), ("plain", TemplateOptions.plainEnvironment)] {
                guard case .dict(let expected)? = c[envName] else { continue }
                let result = Result { try Template(source, options: options).render(["x": .bool(true)]) }
                switch (expected["output"], result) {
                case (.string(let want)?, .success(let got)):
                    #expect(got.utf8.elementsEqual(want.utf8), "\(envName): \(source.debugDescription)\n got \(got.debugDescription)\nwant \(want.debugDescription)")
                case (.string?, .failure(let e)):
                    Issue.record("\(envName): \(source.debugDescription) threw \(e)")
                case (nil, .success(let got)):
                    Issue.record("\(envName): \(source.debugDescription) should fail (\(expected["message"]?.pythonStr ?? "")), rendered \(got.debugDescription)")
                default:
                    break
                }
            }
        }
    }
}
