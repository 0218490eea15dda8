import Testing
@testable import Qwen2
@Test func Qwen2Builds() {}
