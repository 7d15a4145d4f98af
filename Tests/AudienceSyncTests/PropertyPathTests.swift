import Testing

@testable import AudienceSync

@Suite struct PropertyPathTests {
    static let valid: [(String, [String], String)] = [
        ("properties.total", ["properties", "total"], "$.\"properties\".\"total\""),
        ("plan", ["plan"], "$.\"plan\""),
        ("context.page.path", ["context", "page", "path"], "$.\"context\".\"page\".\"path\""),
        ("properties.\"Plan Name\".x", ["properties", "Plan Name", "x"], "$.\"properties\".\"Plan Name\".\"x\""),
        ("properties.\"a.b\"", ["properties", "a.b"], "$.\"properties\".\"a.b\""),
        ("\"with space\"", ["with space"], "$.\"with space\""),
        ("properties.é$[0]", ["properties", "é$[0]"], "$.\"properties\".\"é$[0]\""),
    ]

    @Test(arguments: valid)
    func parses(text: String, keys: [String], sqlitePath: String) async throws {
        let path = try PropertyPath.parse(text)
        #expect(path.keys == keys)
        #expect(SQLiteDialect.jsonPathText(path) == sqlitePath)
        #expect(try PropertyPath.parse(path.description) == path)
    }

    static let invalid: [(String, String)] = [
        ("", "empty path"),
        ("properties.", "empty key"),
        (".total", "empty key"),
        ("a..b", "empty key"),
        ("properties.Plan Name", "a key containing spaces must be quoted"),
        ("properties.\"Plan", "unterminated quoted key"),
        ("properties.\"a\"b", "a quoted key must be followed by '.' or the end"),
        ("properties.a\"b", "a key may not contain '\"'"),
        ("properties.\"a\\\"b\"", "a key may not contain '\\'"),
        ("properties.a\\b", "a key may not contain '\\'"),
        ("properties.\"\"", "empty key"),
    ]

    @Test(arguments: invalid)
    func refuses(text: String, reason: String) {
        #expect {
            _ = try PropertyPath.parse(text)
        } throws: { error in
            "\(error)".hasPrefix(reason)
        }
    }

    @Test func rendersAndDropsTheRoot() async throws {
        let path = try PropertyPath.parse("properties.\"Plan Name\".tier")
        #expect(path.root == "properties")
        #expect(path.droppingRoot.map(SQLiteDialect.jsonPathText) == "$.\"Plan Name\".\"tier\"")
        #expect(path.description == "properties.\"Plan Name\".tier")
        #expect(try PropertyPath.parse("plan").droppingRoot == nil)
    }

    @Test func escapesKeysBuiltByHand() {
        #expect(SQLiteDialect.jsonPathText(PropertyPath(["a\"b", "c\\d"])) == "$.\"a\\\"b\".\"c\\\\d\"")
    }
}
