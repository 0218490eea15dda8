import Foundation
import Jinja
import Testing

/// Syntax errors name line:column and what was expected; runtime errors name the line; untrusted
/// templates end in an error, quickly, when they try to run away.
@Suite struct ErrorAndLimitTests {
    func syntaxError(_ source: String) -> JinjaError? {
        do {
            _ = try Template(source)
            return nil
        } catch let e as JinjaError {
            return e
        } catch {
            return nil
        }
    }

    func renderError(_ source: String, _ context: [String: Value] = [:], options: TemplateOptions = TemplateOptions()) -> JinjaError? {
        do {
            _ = try Template(source, options: options).render(context)
            return nil
        } catch let e as JinjaError {
            return e
        } catch {
            return nil
        }
    }

    @Test func syntaxErrorsGiveLineColumnAndExpectation() {
        #expect(syntaxError("hello\n{{ 1 + }}") == .syntax(message: "expected an expression, found '}}'", line: 2, column: 8))
        #expect(syntaxError("a\n\n  {% if x %}\nno end") == .syntax(message: "unexpected end of template: looking for 'elif' or 'else' or 'endif' to close the 'if' opened at line 3", line: 4, column: 7))
        #expect(syntaxError("{{ 'unterminated }}")?.description.contains("unterminated string literal") == true)
        #expect(syntaxError("{% endfor %}")?.description.contains("line 1") == true)
        #expect(syntaxError("{% for x in %}{% endfor %}")?.description.contains("expected an expression") == true)
        #expect(syntaxError("{% frobnicate %}") == .syntax(message: "unknown tag 'frobnicate'", line: 1, column: 4))
        #expect(syntaxError("{{ x }") != nil)
        #expect(syntaxError("{# never closed") != nil)
        #expect(syntaxError("{% break %}")?.description.contains("outside of a for loop") == true)
        #expect(syntaxError("x\n  {{ a $ b }}")?.description.contains("line 2, column 8") == true)
    }

    @Test func unsupportedConstructsAreNamed() {
        for (source, name) in [("{% include 'x' %}", "include"), ("{% extends 'base' %}", "extends"),
                               ("{% import 'm' as m %}", "import"), ("{% block b %}{% endblock %}", "block"),
                               ("{% for x in y recursive %}{% endfor %}", "recursive"), ("{{ f(*args) }}", "*args")] {
            guard case .unsupported(let what, _, _)? = syntaxError(source) else {
                Issue.record("\(source) should be reported as unsupported")
                continue
            }
            #expect(what.contains(name))
        }
        #expect(syntaxError("{{ x | nosuchfilter }}") == .syntax(message: "no filter named 'nosuchfilter'", line: 1, column: 8))
        #expect(syntaxError("{{ 1 is nosuchtest }}") == .syntax(message: "no test named 'nosuchtest'", line: 1, column: 9))
    }

    @Test func raiseExceptionSurfacesItsMessage() {
        #expect(renderError("{{ raise_exception('System role not supported') }}") == .raised(message: "System role not supported"))
        #expect(JinjaError.raised(message: "Only user and assistant roles").description == "Only user and assistant roles")
    }

    @Test func runtimeErrorsNameTheLine() {
        #expect(renderError("a\nb\n{{ 'x' + 1 }}") == .runtime(message: "can only concatenate str (not \"int\") to str", line: 3))
        #expect(renderError("{% for m in messages %}\n{{ m.content.upper() }}\n{% endfor %}", ["messages": [["role": "user"]]])
            == .runtime(message: "'dict object' has no attribute 'content'", line: 2))
        #expect(renderError("{{ nope.attr }}") == .runtime(message: "'nope' is undefined", line: 1))
    }

    @Test func runawayTemplatesStopQuickly() {
        let start = Date()
        guard case .limit? = renderError("{% for i in range(10**9) %}x{% endfor %}") else {
            Issue.record("range(10**9) must hit the range limit")
            return
        }
        #expect(Date().timeIntervalSince(start) < 1)

        var small = TemplateOptions()
        small.maxLoopIterations = 10_000
        guard case .limit? = renderError("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", options: small) else {
            Issue.record("nested loops must hit the iteration limit")
            return
        }
        guard case .limit? = renderError("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}") else {
            Issue.record("unbounded recursion must hit the depth limit")
            return
        }
        var tiny = TemplateOptions()
        tiny.maxOutputBytes = 1000
        guard case .limit? = renderError("{% for i in range(10000) %}0123456789{% endfor %}", options: tiny) else {
            Issue.record("output must be bounded")
            return
        }
        guard case .limit? = renderError("{{ 'x' * 10**12 }}") else {
            Issue.record("string repetition must be bounded")
            return
        }
        #expect(renderError("{{ 2 ** 100 }}")?.description.contains("overflow") == true)
        let deep = String(repeating: "(", count: 5000) + "1" + String(repeating: ")", count: 5000)
        #expect(syntaxError("{{ \(deep) }}")?.description.contains("nested") == true)
        let deepBlocks = String(repeating: "{% if true %}", count: 1000)
        #expect(syntaxError(deepBlocks) != nil)
    }

    @Test func immutableSandboxRefusesMutation() {
        #expect(renderError("{% set l = [] %}{% set _ = l.append(1) %}")?.description.contains("unsafe") == true)
        var mutable = TemplateOptions()
        mutable.immutable = false
        #expect((try? Template("{% set l = [] %}{% set _ = l.append(1) %}{{ l }}", options: mutable).render([:])) == "[1]")
        #expect(renderError("{% set ns = namespace() %}{% set ns._x = 1 %}")?.description.contains("underscore") == true)
    }
}

/// The public API other targets use.
@Suite struct PublicAPITests {
    @Test func buildsContextsFromLiteralsAndJSON() throws {
        let t = try Template("{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}{{ tools | tojson }}")
        let messages: Value = [["role": "user", "content": "hi"], ["role": "assistant", "content": "yo"]]
        #expect(try t.render(["messages": messages, "tools": .none]) == "<user>hi<assistant>yo</assistant>null".replacingOccurrences(of: "</assistant>", with: ""))
        let tools = try Value.parseJSON(#"[{"name": "f", "b": 1.0, "a": 2, "z": {"y": [true, null]}}]"#)
        #expect(try t.render(["messages": [], "tools": tools]) == #"[{"name": "f", "b": 1.0, "a": 2, "z": {"y": [true, null]}}]"#)
    }

    @Test func parsesJSONKeepingOrderAndNumberKinds() throws {
        let v = try Value.parseJSON(#"{"z": 1, "a": 1.0, "m": 1e2, "u": "\u00e9\ud83d\ude00", "n": -0}"#)
        guard case .dict(let d) = v else { Issue.record("not a dict"); return }
        #expect(d.keys == ["z", "a", "m", "u", "n"])
        #expect(try Template("{{ v.z }} {{ v.a }} {{ v.m }} {{ v.u }} {{ v.n }}").render(["v": v]) == "1 1.0 100.0 é😀 0")
        #expect(throws: JSONParseError.self) { try Value.parseJSON("[1, 2,]") }
        #expect(throws: JSONParseError.self) { try Value.parseJSON("{\"a\" 1}") }
    }

    @Test func trimOptionsMatchEnvironments() throws {
        let source = "a\n  {% if true %}\n  b\n  {% endif %}\nc\n"
        #expect(try Template(source).render([:]) == "a\n  b\nc")
        #expect(try Template(source, options: .plainEnvironment).render([:]) == "a\n  \n  b\n  \nc")
        var keep = TemplateOptions()
        keep.keepTrailingNewline = true
        #expect(try Template(source, options: keep).render([:]) == "a\n  b\nc\n")
    }

    @Test func strftimeNowUsesTheFixedClock() throws {
        var options = TemplateOptions()
        options.fixedNow = 0
        #expect(try Template("{{ strftime_now('%d %b %Y') }}", options: options).render([:]) == "01 Jan 1970")
    }
}

@Suite struct GenerationSpanTests {
    @Test func generationBlocksReportTheirByteRanges() throws {
        let source = "{% for m in messages %}<{{ m.role }}>{% if m.role == 'assistant' %}{% generation %}{{ m.content }}|{% endgeneration %}{% else %}{{ m.content }}{% endif %}{% endfor %}"
        let t = try Template(source)
        let messages: Value = [["role": "user", "content": "héllo"], ["role": "assistant", "content": "wörld"], ["role": "assistant", "content": "ok"]]
        let (text, spans) = try t.renderWithGenerationSpans(["messages": messages])
        #expect(text == "<user>héllo<assistant>wörld|<assistant>ok|")
        let bytes = Array(text.utf8)
        #expect(spans.map { String(decoding: bytes[$0], as: UTF8.self) } == ["wörld|", "ok|"])
    }
}

/// Hostile templates end in an error, never a trap, a hang or unbounded memory.
@Suite struct HostileTemplateTests {
    @Test(arguments: [
        "{{ -(-9223372036854775807 - 1) }}",
        "{{ (-9223372036854775807 - 1) // -1 }}",
        "{{ (-9223372036854775807 - 1) | abs }}",
        "{{ 9223372036854775807 + 1 }}",
        "{{ 1e300 | int }}{{ x.y.z }}",
        "{% for i in range(-9223372036854775807, 9223372036854775807) %}{% endfor %}",
        "{% for i in range(0, 9223372036854775807, 4611686018427387904) %}{{ i }}{% endfor %}{{ undefined_call() }}",
        "{{ 'x' | center(10**15) }}",
        "{{ 'x'.ljust(10**15) }}",
        "{{ 'abc' | indent(10**15) }}",
        "{{ ('x' * 1000000).replace('', 'yyyyyyyyyy' * 1000) }}",
        "{% set ns = namespace(s='xx') %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(100) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
        "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns | tojson }}",
        "{{ '%d' % 1e300 }}",
        "{{ [1][9223372036854775807] + 1 }}",
        "{{ 'abc'[-9223372036854775807:9223372036854775807:-9223372036854775807] }}{{ nope.x }}",
        "{% macro a() %}{{ b() }}{% endmacro %}{% macro b() %}{{ a() }}{% endmacro %}{{ a() }}",
    ])
    func endsInAnError(source: String) {
        do {
            _ = try Template(source).render([:])
            Issue.record("\(source) rendered instead of failing")
        } catch is JinjaError {
        } catch {
            Issue.record("\(source) threw a non-Jinja error \(error)")
        }
    }

    @Test func selfContainingNamespacePrintsLikePython() throws {
        let r = try Template("{% set ns = namespace(a=1) %}{% set ns.me = ns %}{{ ns.a }}").render([:])
        #expect(r == "1")
    }
}
