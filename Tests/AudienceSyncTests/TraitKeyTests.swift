import Testing

@testable import AudienceSync

@Suite struct TraitKeyTests {
    /// SPEC §4.5's vectors, then the examples of its rules.
    static let specVectors: [(String, String)] = [
        ("sample text", "sample_text"),
        ("sample-text", "sample_text"),
        ("sample___text", "sample_text"),
        ("sampleText", "sample_text"),
        ("inviteYourCustomersAddInvites", "invite_your_customers_add_invites"),
        ("   $#$sample   2    Text   ", "sample_2_text"),
        ("SAMPLE 2 TEXT", "sample_2_text"),
        ("___$$Base64Encode", "base64_encode"),
        ("FOO:BAR$BAZ", "foo_bar_baz"),
        ("something.com", "something_com"),
        ("$something%", "something"),
        ("•¶§ƒ˚foo˙∆˚¬", "foo"),
        ("Order Completed Last 30days", "order_completed_last_30days"),
        ("Base64Encode", "base64_encode"),
        ("XMLHttp", "xmlhttp"),
        ("30days", "30days"),
        ("abc1Def", "abc1_def"),
    ]

    @Test(arguments: specVectors)
    func specVector(name: String, key: String) {
        #expect(TraitKey.snakeCase(name) == key)
    }

    static let edgeCases: [(String, String)] = [
        // Non-ASCII letters separate words and are dropped.
        ("Café Crème", "caf_cr_me"),
        ("naïve User", "na_ve_user"),
        ("Ünïcödé", "n_c_d"),
        ("日本語 users", "users"),
        ("🎉Party🎉Time", "party_time"),
        // Digits belong to the word they touch.
        ("2024 Q1 Buyers", "2024_q1_buyers"),
        ("Q1Buyers", "q1buyers"),  // "Q1B" is one uppercase-and-digit run
        ("top10Users", "top10_users"),
        ("ABC123def", "abc123def"),
        ("a2B", "a2_b"),
        ("2ABc", "2abc"),
        ("v2", "v2"),
        ("123", "123"),
        // Runs of capitals.
        ("HTTPServer", "httpserver"),
        ("getHTTPResponse", "get_httpresponse"),
        ("NPS Detractors", "nps_detractors"),
        ("ALLCAPS", "allcaps"),
        ("A", "a"),
        ("aB", "a_b"),
        ("AbCd", "ab_cd"),
        // Separators of every kind, repeated, leading and trailing.
        ("  Total Spent (90 Days)  ", "total_spent_90_days"),
        ("tab\tand\nnewline", "tab_and_newline"),
        ("already_snake_case", "already_snake_case"),
        ("__leading_and_trailing__", "leading_and_trailing"),
        ("Signup To Order 7d", "signup_to_order_7d"),
        // Nothing left.
        ("", ""),
        ("   ", ""),
        ("•¶§ ✓", ""),
        ("___", ""),
        ("éàü", ""),
    ]

    @Test(arguments: edgeCases)
    func edgeCase(name: String, key: String) {
        #expect(TraitKey.snakeCase(name) == key)
    }

    /// Over many generated names: the key is empty or `^[a-z0-9]+(_[a-z0-9]+)*$`, and snake-casing
    /// a key gives it back.
    @Test func propertiesHoldForGeneratedNames() {
        let alphabet = Array("aZbYcXzA09 19_-.$%é•日🎉\tQqMm")
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<5000 {
            let length = Int(generator.next() % 24)
            let name = String((0..<length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
            let key = TraitKey.snakeCase(name)
            #expect(key.isEmpty || isSnakeCase(key), "\(name.debugDescription) -> \(key)")
            #expect(TraitKey.snakeCase(key) == key, "not idempotent: \(name.debugDescription) -> \(key)")
            #expect(key.isEmpty || TraitKey.isValid(key))
        }
    }

    @Test func validity() {
        #expect(TraitKey.isValid("order_completed_30d"))
        #expect(!TraitKey.isValid(""))
        #expect(!TraitKey.isValid("Order"))
        #expect(!TraitKey.isValid("a-b"))
        #expect(!TraitKey.isValid("é"))
    }

    /// `^[a-z0-9]+(_[a-z0-9]+)*$`, without regular expressions.
    private func isSnakeCase(_ key: String) -> Bool {
        let words = key.split(separator: "_", omittingEmptySubsequences: false)
        return words.allSatisfy { word in
            !word.isEmpty && word.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) }
        }
    }
}
