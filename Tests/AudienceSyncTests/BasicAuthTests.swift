import Foundation
import Testing

@testable import AudienceSync

/// The write key as the user name of HTTP Basic credentials, read from the header's bytes.
@Suite struct BasicAuthTests {
    static func header(_ credentials: String) -> String { "Basic " + Data(credentials.utf8).base64EncodedString() }

    @Test(arguments: ["wk_test_1234:", "wk:", "a:", "ab:", "abc:", "wk_é_ключ:", "wk:with:colons", "wk:password"])
    func theUserNameIsTheWriteKey(credentials: String) {
        let user = String(credentials.prefix { $0 != ":" })
        #expect(CollectorResponder.basicUser(Self.header(credentials)) == user)
        #expect(CollectorResponder.basicUser("basic " + Self.header(credentials).dropFirst(6)) == user)
        #expect(CollectorResponder.basicUser(Self.header(credentials) + " \t") == user)
    }

    @Test(arguments: [
        nil, "", "Basic", "Basic ", "Bearer d2s6", "Basic d2s", "Basic d2s6=", "Basic d2s*", "Basic ====",
        "Basic Og==",  // ":" — no user name
        "Basic /w==",  // 0xFF — not UTF-8
        "Basic=d2s6",
    ])
    func otherHeadersNameNoUser(header: String?) {
        #expect(CollectorResponder.basicUser(header) == nil)
    }

    /// Every length of padding decodes as Foundation decodes it.
    @Test func base64DecodesAsFoundationDoes() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let text = Array(Data(bytes).base64EncodedString().utf8)
            let decoded = text.withUnsafeBufferPointer { Base64.decode($0) }
            #expect(decoded == bytes)
        }
    }
}
