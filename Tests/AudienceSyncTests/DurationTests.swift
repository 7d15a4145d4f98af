import Testing

@testable import AudienceSync

@Suite struct DurationTests {
    static let valid: [(String, Int64)] = [
        ("90m", 5_400_000), ("2h", 7_200_000), ("30d", 2_592_000_000), ("1w", 604_800_000),
        ("1d12h", 129_600_000), ("1w2d3h4m", 788_640_000), ("0m", 0), ("007d", 604_800_000),
    ]

    @Test(arguments: valid)
    func parses(text: String, milliseconds: Int64) {
        #expect(Duration(parsing: text)?.milliseconds == milliseconds)
    }

    @Test(arguments: [
        "", "30", "d", "3 days", "30D", "1.5h", "-1d", "30s", "1d 12h", " 2h", "2h ", "1y", "99999999999999999999m",
        "9999999999999999w",
    ])
    func refuses(text: String) {
        #expect(Duration(parsing: text) == nil)
    }

    @Test(arguments: [("2h", "2h"), ("90m", "1h30m"), ("36h", "1d12h"), ("1w", "7d"), ("0m", "0m"), ("1d1m", "1d1m")])
    func describesCanonically(text: String, canonical: String) {
        #expect(Duration(parsing: text)?.description == canonical)
    }

    @Test func orders() {
        #expect(Duration.hours(2) < Duration.days(1))
        #expect(Duration(parsing: "120m") == Duration.hours(2))
    }
}
