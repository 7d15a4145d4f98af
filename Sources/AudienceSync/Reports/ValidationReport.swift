/// What `audience-sync validate` prints (SPEC §8, §10).
public enum ValidationReport {
    /// `{"definitions": [{"name", "key", "kind", "file", "destinations", "schedule"}]}`, keys in a
    /// fixed order, definitions in file-name order, one line.
    public static func json(_ set: DefinitionSet) -> String {
        let items = set.definitions.map { definition in
            "{"
                + [
                    "\"name\":" + Literal.quote(definition.name),
                    "\"key\":" + Literal.quote(definition.key),
                    "\"kind\":" + Literal.quote(definition.kind.rawValue),
                    "\"file\":" + Literal.quote(definition.file),
                    "\"destinations\":[" + definition.destinations.map(Literal.quote).joined(separator: ",") + "]",
                    "\"schedule\":" + Literal.quote(definition.schedule.description),
                ].joined(separator: ",") + "}"
        }
        return "{\"definitions\":[" + items.joined(separator: ",") + "]}"
    }

    /// A table: name, key, kind, destinations, schedule.
    public static func table(_ set: DefinitionSet) -> String {
        let header = ["NAME", "KEY", "KIND", "DESTINATIONS", "SCHEDULE"]
        let rows = set.definitions.map { definition in
            [
                definition.name, definition.key, definition.kind.rawValue,
                definition.destinations.isEmpty ? "-" : definition.destinations.joined(separator: ","),
                definition.schedule.description,
            ]
        }
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
