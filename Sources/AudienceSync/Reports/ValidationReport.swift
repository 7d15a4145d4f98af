/// What `audience-sync validate` prints (SPEC §8, §10): every enabled definition, in file-name
/// order, with its key, kind, destinations and schedule.
public struct ValidationReport: Sendable, Encodable {
    public struct Item: Sendable, Encodable {
        var name: String
        var key: String
        var kind: String
        var file: String
        var destinations: [String]
        var schedule: String
    }

    public var definitions: [Item]

    public init(_ set: DefinitionSet) {
        definitions = set.definitions.map { definition in
            Item(
                name: definition.name, key: definition.key, kind: definition.kind.rawValue, file: definition.file,
                destinations: definition.destinations, schedule: definition.schedule.description)
        }
    }

    /// A table: name, key, kind, destinations, schedule.
    public var table: String {
        let rows = [["NAME", "KEY", "KIND", "DESTINATIONS", "SCHEDULE"]] + definitions.map { item in
            [
                item.name, item.key, item.kind, item.destinations.isEmpty ? "-" : item.destinations.joined(separator: ","),
                item.schedule,
            ]
        }
        return TextTable.render(rows).joined(separator: "\n")
    }
}
