import Testing

@testable import AudienceSync

@Suite struct ErrorTests {
    @Test func descriptionNamesTheLocation() {
        let error = AudienceSyncError(.definition, "unknown operator 'lessThan'", file: "audiences/nps.yml", line: 7, column: 5)
        #expect(error.description == "audiences/nps.yml:7:5: unknown operator 'lessThan'")
        #expect(error.code.isUsage)
    }
}
