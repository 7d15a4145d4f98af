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

    @Test func jsonIsTheSpecDocumentWithStableKeyOrder() throws {
        let json = ValidationReport.json(Self.set)
        #expect(
            json == """
                {"definitions":[{"name":"Quote \\"Me\\"","key":"quote_me","kind":"audience","file":"audiences/q.yml",\
                "destinations":["outbox"],"schedule":"1h30m"},{"name":"Helper","key":"helper","kind":"computed_trait",\
                "file":"audiences/h.yml","destinations":[],"schedule":"2h"}]}
                """)
        let parsed = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect((parsed?["definitions"] as? [Any])?.count == 2)
    }

    @Test func tableListsNameKeyKindDestinationsSchedule() {
        #expect(
            ValidationReport.table(Self.set) == """
                NAME        KEY       KIND            DESTINATIONS  SCHEDULE
                Quote "Me"  quote_me  audience        outbox        1h30m
                Helper      helper    computed_trait  -             2h
                """)
    }
}
