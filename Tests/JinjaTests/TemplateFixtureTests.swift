import Foundation
import Jinja
import Testing

/// Fixtures written by Scripts/fixtures/templates.py (jinja2 as transformers runs it).
let jinjaFixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The fixed `strftime_now` instant the fixture generator uses.
let fixtureNow = 1721989800.0

func renderFixtureNames() throws -> [String] {
    let dir = jinjaFixtures.appendingPathComponent("renders")
    return try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
}

@Suite struct TemplateFixtureTests {
    @Test(arguments: try renderFixtureNames())
    func rendersLikeJinja2(file: String) throws {
        let data = try String(contentsOf: jinjaFixtures.appendingPathComponent("renders/\(file)"), encoding: .utf8)
        guard case .dict(let fixture) = try Value.parseJSON(data),
              case .string(let templatePath)? = fixture["template"],
              case .string(let environment)? = fixture["environment"],
              case .list(let cases)? = fixture["cases"] else {
            Issue.record("malformed fixture \(file)")
            return
        }
        let source = try String(contentsOf: repoRoot.appendingPathComponent(templatePath), encoding: .utf8)
        var options = environment == "plain" ? TemplateOptions.plainEnvironment : TemplateOptions()
        options.fixedNow = fixtureNow
        let template = try Template(source, options: options)
        #expect(cases.items.count >= 10)
        var compared = 0
        for item in cases.items {
            guard case .dict(let c) = item, case .string(let name)? = c["name"], case .dict(let ctx)? = c["context"] else {
                Issue.record("malformed case in \(file)")
                continue
            }
            var context: [String: Value] = [:]
            for (k, v) in ctx.pairs { context[k] = v }
            if case .string(let expected)? = c["output"] {
                do {
                    let got = try template.render(context)
                    compared += 1
                    #expect(got.utf8.elementsEqual(expected.utf8), "\(file) / \(name)\n--- got ---\n\(got)\n--- expected ---\n\(expected)")
                } catch {
                    Issue.record("\(file) / \(name): threw \(error)")
                }
            } else if case .string(let kind)? = c["error"] {
                do {
                    let got = try template.render(context)
                    Issue.record("\(file) / \(name): expected \(kind) error, rendered \(got.debugDescription)")
                } catch let e as JinjaError {
                    compared += 1
                    if kind == "raised", case .string(let message)? = c["message"] {
                        #expect(e == .raised(message: message), "\(file) / \(name)")
                    }
                }
            }
        }
        #expect(compared == cases.items.count, "\(file): compared \(compared) of \(cases.items.count)")
    }
}
