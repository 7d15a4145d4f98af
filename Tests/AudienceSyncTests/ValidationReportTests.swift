import Foundation
import Testing

@testable import AudienceSync

@Suite struct ValidationReportTests {
    static let set: DefinitionSet = {
        let definitions = [
            Definition(
                name: "Quote \"Me\"", key: "quote_me", kind: .audience, destinations: ["outbox"],
                schedule: .minutes(90),
                file: "audiences/q.yml"),
            Definition(name: "Helper", key: "helper", kind: .computedTrait, destinations: [], file: "audiences/h.yml"),
        ]
        return DefinitionSet(definitions: definitions, evaluationOrder: definitions)
    }()

    @Test func jsonIsTheSpecDocumentWithStableKeyOrder() async throws {
        let json = ReportJSON.encode(ValidationReport(Self.set))
        #expect(
            json == """
                {"definitions":[{"destinations":["outbox"],"file":"audiences/q.yml","key":"quote_me","kind":"audience",\
                "name":"Quote \\"Me\\"","schedule":"1h30m"},{"destinations":[],"file":"audiences/h.yml","key":"helper",\
                "kind":"computed_trait","name":"Helper","schedule":"2h"}]}
                """)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect((parsed?["definitions"] as? [Any])?.count == 2)
    }

    @Test func tableListsNameKeyKindDestinationsSchedule() {
        #expect(
            ValidationReport(Self.set).table == """
                NAME        KEY       KIND            DESTINATIONS  SCHEDULE
                Quote "Me"  quote_me  audience        outbox        1h30m
                Helper      helper    computed_trait  -             2h
                """)
    }
}
