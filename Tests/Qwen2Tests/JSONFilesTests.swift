import Foundation
import Testing
import TestSupport
@testable import Qwen2

/// The JSON files and outputs Qwen2 reads and writes through the JSON target. What Foundation's
/// encoder wrote before is the reference for the bytes (`qwenft init`'s config.json and
/// generation_config.json, `qwenft eval --json`); Tests/CLITests/Fixtures/init-golden holds the
/// files main's binary wrote before the change.
@Suite struct JSONFilesTests {
    func foundation<T: Encodable>(_ value: T, pretty: Bool) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys] : [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    @Test func configFilesKeepFoundationsBytes() throws {
        for preset in Qwen2Preset.allCases {
            var config = preset.config
            config.dtype = "bfloat16"
            config.eosTokenIds = preset == .tiny ? [1, 2] : config.eosTokenIds
            config.initializerRange = preset == .small ? 0.05 : 0.02
            #expect(String(decoding: try initConfigJSON(config), as: UTF8.self) == (try foundation(config, pretty: true)))
            #expect(try Qwen2Config.load(write(initConfigJSON(config))) == config)
        }
        var g = Qwen2Preset.generationConfig
        #expect(String(decoding: try initConfigJSON(g), as: UTF8.self) == (try foundation(g, pretty: true)))
        g.minP = 0.05
        g.maxNewTokens = 10
        g.eosTokenIds = [7]
        #expect(String(decoding: try initConfigJSON(g), as: UTF8.self) == (try foundation(g, pretty: true)))
    }

    @Test func evalLineKeepsFoundationsBytes() throws {
        for r in [EvalResult(loss: 2.5, tokenAccuracy: 0.125, tokens: 8, records: 2),
                  EvalResult(loss: 3, tokenAccuracy: 1, tokens: 1, records: 1),
                  EvalResult(loss: 11.933_470_215_797_424, tokenAccuracy: 1e-7, tokens: 123_456, records: 0)] {
            #expect(try r.jsonText() == (try foundation(r, pretty: false)))
        }
    }

    func write(_ data: Data) throws -> URL {
        let url = Scratch.file("config", suffix: ".json")
        try data.write(to: url)
        return url
    }

    @Test func readErrorsNameTheFileLineAndColumn() throws {
        let bad = try write(Data("{\n  \"hidden_size\": 64,\n  \"vocab_size\" 10\n}".utf8))
        #expect(throws: Qwen2Error.self) { try Qwen2Config.load(bad) }
        do { _ = try Qwen2Config.load(bad) } catch {
            #expect("\(error)".hasPrefix("\(bad.path): line 3, column 16: "), "\(error)")
        }
        let missing = try write(Data(#"{"hidden_size": 64}"#.utf8))
        do { _ = try Qwen2Config.load(missing) } catch {
            #expect("\(error)" == "\(missing.path): missing key \"vocab_size\"", "\(error)")
        }
        let records = Scratch.file("eval", suffix: ".jsonl")
        try Data("{\"text\": \"a\"}\n  {\"text\": \"b\",}\n".utf8).write(to: records)
        do { _ = try readTextRecords(records.path) } catch {
            #expect("\(error)".hasPrefix("\(records.path):2: column 16: "), "\(error)")
        }
    }

    @Test func evalRecordsKeepByteOrderMarks() throws {
        let records = Scratch.file("eval", suffix: ".jsonl")
        try Data("{\"text\": \"\u{feff}a\\ufeffb\"}\n".utf8).write(to: records)
        #expect(try readTextRecords(records.path) == ["\u{feff}a\u{feff}b"])
    }
}
