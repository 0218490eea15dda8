import Testing
@testable import Jinja
@Test func JinjaBuilds() {}
