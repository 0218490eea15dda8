import Testing
@testable import SafeTensors
@Test func SafeTensorsBuilds() {}
