import Testing
@testable import Distributed
@Test func DistributedBuilds() {}
