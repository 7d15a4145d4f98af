import Testing

@testable import AudienceSync

@Suite struct TimestampTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("1970-01-01T00:00:00.001Z", 1),
        ("2026-11-22T12:00:00Z", 1_795_348_800_000),
        ("2026-11-22T12:00:00.123456Z", 1_795_348_800_123),
        ("2026-11-22T12:00:00.5Z", 1_795_348_800_500),
        ("2026-11-22T14:00:00+02:00", 1_795_348_800_000),
        ("2026-11-22T14:00:00+0200", 1_795_348_800_000),
        ("2026-11-22T07:30:00-04:30", 1_795_348_800_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
        ("1969-12-31T23:59:59.999Z", -1),
    ])
    func parses(text: String, millis: Int64) {
        #expect(Timestamp.parse(text) == millis)
    }

    @Test(arguments: [
        "", "2026-11-22", "2026-11-22T12:00:00", "2026-11-22T12:00Z", "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T12:00:00.Z", "2026-11-22T12:00:00Zjunk",
        "yesterday", "2026-11-22T12:00:00+2", "1795348800000",
    ])
    func refuses(text: String) {
        #expect(Timestamp.parse(text) == nil)
    }

    @Test(arguments: [Int64(0), 1, -1, 1_795_348_800_123, 951_782_400_000, 4_102_444_799_999])
    func formatRoundTrips(millis: Int64) {
        let text = Timestamp.format(millis)
        #expect(text.count == 24)
        #expect(Timestamp.parse(text) == millis)
    }

    @Test func formatsUTC() {
        #expect(Timestamp.format(1_795_348_800_123) == "2026-11-22T12:00:00.123Z")
    }
}
