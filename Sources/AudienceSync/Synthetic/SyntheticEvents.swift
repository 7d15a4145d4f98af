/// A deterministic generator of synthetic Segment-spec events as NDJSON, for demos, benchmarks and tests.
///
/// The same arguments always give the same bytes: the generator draws from its own seeded
/// PRNG, never iterates a dictionary and writes the JSON bytes itself. It emits exactly
/// `events` lines whose event times spread over the `days` before `now` (roughly increasing
/// through the output, small jitter, never after `now` nor before `now − days`).
///
/// The mix follows a user's life: an anonymous visitor browses (`anonymousId` only), most
/// visitors identify later (an `identify` carrying both ids), a few link with `alias`
/// instead, and some never do; a separate pool of visitors never identifies at all. Known
/// users view pages and products, order (USD, some EUR), answer Sprig surveys (SPEC §3.3:
/// an NPS and a multiple-choice question) and sometimes change traits (plan upgrades).
/// Users are picked with a skew, so some are much more active than others. About 2% of the
/// messages have no `messageId`; the others carry `gen-<seed>-<line index>`.
///
/// Memory is flat: a few bytes of state per user plus one output chunk.
public struct SyntheticEvents: Sendable {
    public let users: Int
    public let events: Int
    public let seed: UInt64
    public let days: Int
    /// The end of the event-time window, epoch milliseconds.
    public let now: Int64

    /// The size after which a chunk is handed to the sink (a chunk always ends at a line end).
    public static let chunkSize = 1 << 20

    public init(users: Int, events: Int, seed: UInt64 = 1, days: Int = 90, now: Int64) {
        precondition(users >= 1, "users must be at least 1")
        precondition(events >= 0, "events must not be negative")
        precondition(days >= 1, "days must be at least 1")
        self.users = users
        self.events = events
        self.seed = seed
        self.days = days
        self.now = now
    }

    /// Calls `sink` with consecutive chunks of complete NDJSON lines (about `chunkSize` bytes each).
    ///
    /// The buffer passed to `sink` is valid only during the call.
    public func generate(_ sink: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        var generator = Generator(self)
        var out = JSONBytes(capacity: Self.chunkSize + 16_384)
        for index in 0..<events {
            generator.emitLine(index: index, into: &out)
            if out.bytes.count >= Self.chunkSize {
                try out.bytes.withUnsafeBytes(sink)
                out.bytes.removeAll(keepingCapacity: true)
            }
        }
        if !out.bytes.isEmpty {
            try out.bytes.withUnsafeBytes(sink)
        }
    }
}

// MARK: - JSON bytes

/// An append-only byte buffer with the few JSON writers the generator needs.
struct JSONBytes {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    @inline(__always) mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    /// Appends bytes that are already valid JSON (for strings: escaped, without quotes).
    @inline(__always) mutating func raw(_ text: [UInt8]) {
        bytes.append(contentsOf: text)
    }

    /// A quoted string from pre-escaped bytes.
    @inline(__always) mutating func string(_ escaped: [UInt8]) {
        bytes.append(0x22)
        bytes.append(contentsOf: escaped)
        bytes.append(0x22)
    }

    mutating func int(_ value: Int) {
        var magnitude = value.magnitude
        if value < 0 { bytes.append(0x2D) }
        if magnitude < 10 {
            bytes.append(UInt8(truncatingIfNeeded: magnitude) + 0x30)
            return
        }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var count = 0
            while magnitude > 0 {
                digits[19 - count] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
                magnitude /= 10
                count += 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: digits[(20 - count)...]))
        }
    }

    /// `value` left-padded with zeros to at least `width` digits (`value` ≥ 0).
    mutating func padded(_ value: Int, width: Int) {
        var digits = 1
        var limit = 10
        while value >= limit && digits < 19 {
            digits += 1
            limit = limit &* 10
        }
        for _ in digits..<max(digits, width) { bytes.append(0x30) }
        int(value)
    }

    /// An amount of cents as a JSON number with two decimals: 12345 → `123.45`.
    mutating func cents(_ cents: Int) {
        int(cents / 100)
        bytes.append(0x2E)
        padded(cents % 100, width: 2)
    }

    /// A quoted ISO-8601 UTC time with milliseconds.
    mutating func time(_ millis: Int64) {
        bytes.append(0x22)
        Timestamp.format(millis, into: &bytes)
        bytes.append(0x22)
    }

    /// 16 lowercase hex digits.
    mutating func hex(_ value: UInt64) {
        var shift: UInt64 = 60
        for _ in 0..<16 {
            let nibble = UInt8(truncatingIfNeeded: (value >> shift) & 0xF)
            bytes.append(nibble < 10 ? nibble + 0x30 : nibble + 0x57)
            shift &-= 4
        }
    }

    /// The JSON escaping of `text`, without quotes (`JSONValue.writeString`'s).
    static func escaped(_ text: String) -> [UInt8] {
        var quoted: [UInt8] = []
        JSONValue.writeString(text, into: &quoted)
        return Array(quoted.dropFirst().dropLast())
    }
}

// MARK: - Vocabulary

/// The fixed tables the generator draws from, JSON-escaped once.
enum SyntheticVocabulary {
    static func table(_ texts: [String]) -> [[UInt8]] { texts.map(JSONBytes.escaped) }

    static let firstNames = table([
        "Ada", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Grace", "Hiro", "Ines", "José", "Kwame", "Lena",
        "Mateo", "Nia", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tomás", "Uma", "Viktor", "Wei", "Zoë",
    ])
    /// ASCII forms of `firstNames` for e-mail addresses (same order).
    static let firstNamesEmail = table([
        "ada", "ben", "chloe", "dmitri", "eve", "farah", "grace", "hiro", "ines", "jose", "kwame", "lena",
        "mateo", "nia", "oskar", "priya", "quinn", "rosa", "sven", "tomas", "uma", "viktor", "wei", "zoe",
    ])
    static let lastNames = table([
        "Lovelace", "O'Brien", "Okafor", "Müller", "Nakamura", "García", "Hopper", "Kowalski", "Singh", "Dubois",
        "Andersson", "Rossi", "Nguyen", "Smith", "Łukasiewicz", "Fernández",
    ])
    static let lastNamesEmail = table([
        "lovelace", "obrien", "okafor", "mueller", "nakamura", "garcia", "hopper", "kowalski", "singh", "dubois",
        "andersson", "rossi", "nguyen", "smith", "lukasiewicz", "fernandez",
    ])
    static let companies = table([
        "Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Enterprises",
        "Müller & Söhne GmbH", "Société Générale de Café", "Frobozz \"Magic\" Co", "Hooli", "Pied Piper",
        "Tyrell", "C:\\Drive Consulting", "Cyberdyne", "Vandelay Industries", "Soylent",
    ])
    /// Domains of `companies` (same order).
    static let companyDomains = table([
        "acme.example", "globex.example", "initech.example", "umbrella.example", "stark.example",
        "wayne.example", "mueller-soehne.example", "sgcafe.example", "frobozz.example", "hooli.example",
        "piedpiper.example", "tyrell.example", "cdrive.example", "cyberdyne.example", "vandelay.example",
        "soylent.example",
    ])
    /// Roles; also the answers of the multiple-choice survey question.
    static let roles = table(["Engineer", "Product Manager", "Designer", "Founder", "Researcher", "Marketing"])
    static let plans = table(["free", "pro", "enterprise"])
    static let locales = table(["en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "ja-JP"])
    static let userAgents = table([
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    ])
    static let iosUserAgent = table(["Acme/4.2.0 (iPhone; iOS 17.4; Scale/3.00)"])[0]

    struct Page {
        let name: [UInt8]
        let path: [UInt8]
        let title: [UInt8]
    }
    static let pages: [Page] = [
        ("Home", "/", "Acme — Home"),
        ("Pricing", "/pricing", "Pricing — Acme"),
        ("Docs", "/docs/getting-started", "Getting started — Acme Docs"),
        ("Docs", "/docs/api", "API reference — Acme Docs"),
        ("Blog", "/blog/why-we-built-\"audiences\"", "Why we built \"audiences\" — Acme Blog"),
        ("Product", "/products/skillet-12", "12\" Cast-Iron Skillet — Acme"),
        ("Product", "/products/cafe-mug", "Café Mug — Acme"),
        ("Checkout", "/checkout", "Checkout — Acme"),
        ("Account", "/account/settings", "Settings — Acme"),
    ].map { Page(name: JSONBytes.escaped($0.0), path: JSONBytes.escaped($0.1), title: JSONBytes.escaped($0.2)) }
    static let referrers = table(["", "https://www.google.com/", "https://news.ycombinator.com/", "https://t.co/x1y2z3"])

    struct Product {
        let id: [UInt8]
        let name: [UInt8]
        let category: [UInt8]
        let priceCents: Int
    }
    static let products: [Product] = [
        ("sku-1001", "12\" Cast-Iron Skillet", "Kitchen", 4_999),
        ("sku-1002", "Café Mug", "Kitchen", 1_450),
        ("sku-1003", "Rock 'n' Roll T-Shirt", "Apparel", 2_500),
        ("sku-1004", "Noise-Cancelling Headphones", "Audio", 24_900),
        ("sku-1005", "USB-C Cable (2 m)", "Accessories", 1_299),
        ("sku-1006", "Standing Desk", "Office", 54_900),
        ("sku-1007", "Notebook \\ Dotted", "Office", 899),
    ].map {
        Product(
            id: JSONBytes.escaped($0.0), name: JSONBytes.escaped($0.1), category: JSONBytes.escaped($0.2),
            priceCents: $0.3)
    }
    static let searchQueries = table([
        "skillet", "12\" skillet", "headphones", "desk", "usb\\c cable", "mug", "gift ideas", "t-shirt",
    ])
    static let screens = table(["Dashboard", "Orders", "Settings", "Product Detail"])
    static let features = table(["Export CSV", "Dark Mode", "Saved Search", "Audience Builder"])
    static let surveyTriggers = table(["Order Completed", "Signed Up", "Product Viewed"])

    static let npsQuestion = JSONBytes.escaped("How likely are you to recommend us?")
    static let roleQuestion = JSONBytes.escaped("What is your role?")
    /// Relative weights of NPS answers 0…10: mostly promoters and passives, a tail of detractors.
    static let npsWeights = [3, 1, 2, 2, 3, 5, 7, 12, 20, 22, 23]
}

// MARK: - The generator

/// The per-run state: the PRNG and a few bytes per user.
private struct Generator {
    /// Where a user is in their life.
    enum Stage: UInt8 {
        /// Not seen yet.
        case new
        /// Browsing with an anonymous id only.
        case anonymous
        /// Linked by `alias`; the next message is their first `identify`.
        case aliased
        /// Just identified; the next message is `Signed Up`.
        case identified
        /// Known.
        case known
    }

    /// How a message names its sender.
    enum Identity {
        case user, userAndAnonymous, userAndNullAnonymous, anonymous
    }

    /// Which library sent a message; it decides the `context`.
    enum Source {
        case web, server, ios, sprig
    }

    let config: SyntheticEvents
    var random: SplitMix64
    var stage: [Stage]
    var plan: [UInt8]
    var role: [UInt8]
    /// A permutation of user indexes, so that the most active users are not simply the first ones.
    let multiplier: Int
    let offset: Int
    let visitors: Int
    let start: Int64
    let step: Double
    let seedText: [UInt8]
    let npsTotal: Int

    // Per-line values.
    var index = 0
    var time: Int64 = 0

    init(_ config: SyntheticEvents) {
        self.config = config
        random = SplitMix64(seed: SplitMix64.mix(config.seed ^ 0x5EED_A0D1_E2CE_0001))
        stage = [Stage](repeating: .new, count: config.users)
        plan = [UInt8](repeating: 0, count: config.users)
        role = [UInt8](repeating: 0, count: config.users)
        for user in 0..<config.users {
            let hash = SplitMix64.mix(config.seed &+ UInt64(user) &* 0x9E37_79B9)
            let planDraw = (hash >> 32) % 10
            plan[user] = planDraw < 6 ? 0 : planDraw < 9 ? 1 : 2
            role[user] = UInt8((hash >> 24) % UInt64(SyntheticVocabulary.roles.count))
        }
        var chosen = 1
        for candidate in [2_654_435_761, 1_000_003, 999_983, 40_503, 7_919, 101] {
            let reduced = candidate % config.users
            if reduced > 0 && Self.gcd(reduced, config.users) == 1 {
                chosen = reduced
                break
            }
        }
        multiplier = chosen
        offset = Int(config.seed % UInt64(config.users))
        visitors = max(1, config.users / 4)
        let span = Int64(config.days) * 86_400_000
        start = config.now - span
        step = config.events > 0 ? Double(span) / Double(config.events) : 0
        seedText = Array(String(config.seed).utf8)
        npsTotal = SyntheticVocabulary.npsWeights.reduce(0, +)
    }

    static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }

    /// A user index, skewed: three quarters of the picks favour a small set of heavy users.
    mutating func pickUser() -> Int {
        let users = config.users
        let raw: Int
        if random.percent(75) {
            let u = random.unit()
            raw = min(users - 1, Int(Double(users) * u * u))
        } else {
            raw = random.below(users)
        }
        return (raw * multiplier + offset) % users
    }

    /// A stable per-user hash (name, company, path through life, …).
    func userHash(_ user: Int) -> UInt64 {
        SplitMix64.mix(config.seed &+ UInt64(user) &* 0x9E37_79B9)
    }

    /// Writes line `index` and its newline.
    mutating func emitLine(index: Int, into out: inout JSONBytes) {
        self.index = index
        let base = start + Int64(Double(index) * step)
        time = min(config.now, max(start, base + Int64(random.below(60_001)) - 30_000))

        if random.percent(5) {
            let visitor = random.below(visitors)
            emitAnonymousBrowse(anonymousId: visitorAnonymousId(visitor), user: visitor, into: &out)
        } else {
            let user = pickUser()
            emitForUser(user, into: &out)
        }
        out.bytes.append(0x0A)
    }

    mutating func emitForUser(_ user: Int, into out: inout JSONBytes) {
        let hash = userHash(user)
        let path = (hash >> 40) % 100  // < 55 identify at once, < 93 browse then identify, else alias
        switch stage[user] {
        case .new:
            if path < 55 {
                emitIdentify(user, identity: .userAndAnonymous, source: .web, into: &out)
                stage[user] = .identified
            } else {
                emitAnonymousBrowse(anonymousId: userAnonymousId(user), user: user, into: &out)
                stage[user] = .anonymous
            }
        case .anonymous:
            if random.percent(35) {
                if path >= 93 {
                    emitAlias(user, into: &out)
                    stage[user] = .aliased
                } else {
                    emitIdentify(user, identity: .userAndAnonymous, source: .web, into: &out)
                    stage[user] = .identified
                }
            } else {
                emitAnonymousBrowse(anonymousId: userAnonymousId(user), user: user, into: &out)
            }
        case .aliased:
            emitIdentify(user, identity: .user, source: .server, into: &out)
            stage[user] = .identified
        case .identified:
            emitSignedUp(user, into: &out)
            stage[user] = .known
        case .known:
            emitKnown(user, into: &out)
        }
    }

    mutating func emitKnown(_ user: Int, into out: inout JSONBytes) {
        let draw = random.below(1000)
        switch draw {
        case ..<400: emitPage(user: user, identity: webIdentity(), anonymousId: userAnonymousId(user), into: &out)
        case ..<580: emitProductViewed(user: user, identity: webIdentity(), into: &out)
        case ..<650: emitProductAdded(user, into: &out)
        case ..<690: emitCheckoutStarted(user, into: &out)
        case ..<780: emitOrderCompleted(user: user, identity: serverIdentity(), into: &out)
        case ..<820: emitScreen(user, into: &out)
        case ..<870: emitSearch(user: user, identity: webIdentity(), into: &out)
        case ..<900: emitFeatureUsed(user, into: &out)
        case ..<945: emitSurveyResponse(user, nps: true, into: &out)
        case ..<970: emitSurveyResponse(user, nps: false, into: &out)
        default:
            changeTraits(user)
            emitIdentify(user, identity: webIdentity(), source: .web, into: &out)
        }
    }

    /// A plan upgrade when there is room for one, else a new role.
    mutating func changeTraits(_ user: Int) {
        if plan[user] < 2 && random.percent(60) {
            plan[user] += 1
        } else {
            role[user] = UInt8((Int(role[user]) + 1 + random.below(SyntheticVocabulary.roles.count - 1))
                % SyntheticVocabulary.roles.count)
        }
    }

    /// analytics.js sends the anonymous id beside the user id; some clients send it as null.
    mutating func webIdentity() -> Identity {
        random.percent(90) ? .userAndAnonymous : .userAndNullAnonymous
    }

    /// Server-side libraries usually know only the user id.
    mutating func serverIdentity() -> Identity {
        switch random.below(10) {
        case ..<5: return .userAndNullAnonymous
        case ..<8: return .userAndAnonymous
        default: return .user
        }
    }

    // MARK: Messages

    /// `{"type":"…"`, the ids, `messageId`, `timestamp` and sometimes `sentAt`/`receivedAt`.
    mutating func head(
        _ type: StaticString, user: Int, identity: Identity, anonymousId: AnonymousId, into out: inout JSONBytes
    ) {
        out.raw("{\"type\":\"")
        out.raw(type)
        out.raw("\"")
        switch identity {
        case .user:
            writeUserId(user, into: &out)
        case .userAndAnonymous:
            writeUserId(user, into: &out)
            writeAnonymousId(anonymousId, into: &out)
        case .userAndNullAnonymous:
            writeUserId(user, into: &out)
            out.raw(",\"anonymousId\":null")
        case .anonymous:
            writeAnonymousId(anonymousId, into: &out)
        }
        if !random.percent(2) {
            out.raw(",\"messageId\":\"gen-")
            out.raw(seedText)
            out.raw("-")
            out.int(index)
            out.raw("\"")
        }
        out.raw(",\"timestamp\":")
        out.time(time)
        if random.percent(35) {
            let sentAt = min(config.now, time + Int64(random.below(2_000)))
            out.raw(",\"sentAt\":")
            out.time(sentAt)
            if random.percent(50) {
                out.raw(",\"receivedAt\":")
                out.time(min(config.now, sentAt + 20 + Int64(random.below(800))))
            }
        }
    }

    func writeUserId(_ user: Int, into out: inout JSONBytes) {
        out.raw(",\"userId\":\"u_")
        out.padded(user + 1, width: 6)
        out.raw("\"")
    }

    /// An anonymous id: a user's own (before or beside their user id) or a never-identifying visitor's.
    struct AnonymousId {
        let hash: UInt64
    }

    func userAnonymousId(_ user: Int) -> AnonymousId {
        AnonymousId(hash: SplitMix64.mix(config.seed ^ (UInt64(user) &* 0xA24B_AED4_963E_E407)))
    }

    func visitorAnonymousId(_ visitor: Int) -> AnonymousId {
        AnonymousId(hash: SplitMix64.mix(~config.seed ^ (UInt64(visitor) &* 0x9FB2_1C65_1E98_DF25)))
    }

    func writeAnonymousId(_ id: AnonymousId, into out: inout JSONBytes) {
        out.raw(",\"anonymousId\":\"anon_")
        out.hex(id.hash)
        out.raw("\"")
    }

    /// `,"context":{…}}` — closes the message.
    func context(_ source: Source, user: Int, page: SyntheticVocabulary.Page? = nil, into out: inout JSONBytes) {
        let hash = userHash(user)
        out.raw(",\"context\":{")
        switch source {
        case .web:
            out.raw("\"library\":{\"name\":\"analytics.js\",\"version\":\"next-1.70.0\"},")
        case .server:
            out.raw("\"library\":{\"name\":\"analytics-node\",\"version\":\"2.1.2\"},")
        case .ios:
            out.raw("\"library\":{\"name\":\"analytics-ios\",\"version\":\"4.1.8\"},")
            out.raw("\"device\":{\"manufacturer\":\"Apple\",\"type\":\"ios\"},\"os\":{\"name\":\"iOS\",\"version\":\"17.4\"},")
        case .sprig:
            out.raw("\"integration\":{\"name\":\"Sprig\",\"version\":\"1.0.0\"},")
            out.raw("\"library\":{\"name\":\"analytics-node\",\"version\":\"2.1.2\"},")
        }
        out.raw("\"ip\":\"198.51.100.")
        out.int(Int(hash % 254) + 1)
        out.raw("\"")
        if source == .web || source == .ios {
            out.raw(",\"userAgent\":")
            if source == .ios {
                out.string(SyntheticVocabulary.iosUserAgent)
            } else {
                out.string(SyntheticVocabulary.userAgents[Int((hash >> 8) % 4)])
            }
            out.raw(",\"locale\":")
            out.string(SyntheticVocabulary.locales[Int((hash >> 12) % UInt64(SyntheticVocabulary.locales.count))])
        }
        if let page {
            out.raw(",\"page\":{\"path\":")
            out.string(page.path)
            out.raw(",\"url\":\"https://www.acme.example")
            out.raw(page.path)
            out.raw("\",\"title\":")
            out.string(page.title)
            out.raw("}")
        }
        out.raw("}}")
    }

    /// A visitor's page view, product view, search or (rarely) guest order, with the anonymous id only.
    mutating func emitAnonymousBrowse(anonymousId: AnonymousId, user: Int, into out: inout JSONBytes) {
        let draw = random.below(100)
        if draw < 68 {
            emitPage(user: user, identity: .anonymous, anonymousId: anonymousId, into: &out)
        } else if draw < 90 {
            head("track", user: user, identity: .anonymous, anonymousId: anonymousId, into: &out)
            productViewedBody(into: &out)
            context(.web, user: user, into: &out)
        } else if draw < 96 {
            head("track", user: user, identity: .anonymous, anonymousId: anonymousId, into: &out)
            searchBody(into: &out)
            context(.web, user: user, into: &out)
        } else {
            head("track", user: user, identity: .anonymous, anonymousId: anonymousId, into: &out)
            orderBody(into: &out)
            context(.web, user: user, into: &out)
        }
    }

    mutating func emitPage(user: Int, identity: Identity, anonymousId: AnonymousId, into out: inout JSONBytes) {
        let page = SyntheticVocabulary.pages[random.below(SyntheticVocabulary.pages.count)]
        let referrer = SyntheticVocabulary.referrers[random.below(SyntheticVocabulary.referrers.count)]
        head("page", user: user, identity: identity, anonymousId: anonymousId, into: &out)
        out.raw(",\"name\":")
        out.string(page.name)
        out.raw(",\"properties\":{\"path\":")
        out.string(page.path)
        out.raw(",\"url\":\"https://www.acme.example")
        out.raw(page.path)
        out.raw("\",\"title\":")
        out.string(page.title)
        out.raw(",\"referrer\":")
        out.string(referrer)
        out.raw("}")
        context(.web, user: user, page: page, into: &out)
    }

    mutating func emitIdentify(_ user: Int, identity: Identity, source: Source, into out: inout JSONBytes) {
        let hash = userHash(user)
        let first = Int(hash % UInt64(SyntheticVocabulary.firstNames.count))
        let last = Int((hash >> 8) % UInt64(SyntheticVocabulary.lastNames.count))
        let company = Int((hash >> 16) % UInt64(SyntheticVocabulary.companies.count))
        head("identify", user: user, identity: identity, anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"traits\":{\"plan\":")
        out.string(SyntheticVocabulary.plans[Int(plan[user])])
        out.raw(",\"company\":")
        out.string(SyntheticVocabulary.companies[company])
        out.raw(",\"role\":")
        out.string(SyntheticVocabulary.roles[Int(role[user])])
        out.raw(",\"email\":\"")
        writeEmail(user, into: &out)
        out.raw("\",\"name\":\"")
        out.raw(SyntheticVocabulary.firstNames[first])
        out.raw(" ")
        out.raw(SyntheticVocabulary.lastNames[last])
        out.raw("\"}")
        context(source, user: user, into: &out)
    }

    /// `first.last<n>@company-domain`, unquoted.
    func writeEmail(_ user: Int, into out: inout JSONBytes) {
        let hash = userHash(user)
        out.raw(SyntheticVocabulary.firstNamesEmail[Int(hash % UInt64(SyntheticVocabulary.firstNames.count))])
        out.raw(".")
        out.raw(SyntheticVocabulary.lastNamesEmail[Int((hash >> 8) % UInt64(SyntheticVocabulary.lastNames.count))])
        out.int(user + 1)
        out.raw("@")
        out.raw(SyntheticVocabulary.companyDomains[Int((hash >> 16) % UInt64(SyntheticVocabulary.companies.count))])
    }

    mutating func emitAlias(_ user: Int, into out: inout JSONBytes) {
        head("alias", user: user, identity: .user, anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"previousId\":\"anon_")
        out.hex(userAnonymousId(user).hash)
        out.raw("\"")
        context(.server, user: user, into: &out)
    }

    mutating func emitSignedUp(_ user: Int, into out: inout JSONBytes) {
        head("track", user: user, identity: .userAndAnonymous, anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"event\":\"Signed Up\",\"properties\":{\"method\":")
        out.raw(random.percent(70) ? "\"email\"" : "\"google\"")
        out.raw(",\"plan\":")
        out.string(SyntheticVocabulary.plans[Int(plan[user])])
        out.raw("}")
        context(.web, user: user, into: &out)
    }

    mutating func emitProductViewed(user: Int, identity: Identity, into out: inout JSONBytes) {
        head("track", user: user, identity: identity, anonymousId: userAnonymousId(user), into: &out)
        productViewedBody(into: &out)
        context(.web, user: user, into: &out)
    }

    mutating func productViewedBody(into out: inout JSONBytes) {
        let product = SyntheticVocabulary.products[random.below(SyntheticVocabulary.products.count)]
        out.raw(",\"event\":\"Product Viewed\",\"properties\":{\"product_id\":")
        out.string(product.id)
        out.raw(",\"name\":")
        out.string(product.name)
        out.raw(",\"category\":")
        out.string(product.category)
        out.raw(",\"price\":")
        out.cents(product.priceCents)
        out.raw("}")
    }

    mutating func emitProductAdded(_ user: Int, into out: inout JSONBytes) {
        let product = SyntheticVocabulary.products[random.below(SyntheticVocabulary.products.count)]
        head("track", user: user, identity: webIdentity(), anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"event\":\"Product Added\",\"properties\":{\"product_id\":")
        out.string(product.id)
        out.raw(",\"quantity\":")
        out.int(1 + random.below(3))
        out.raw(",\"price\":")
        out.cents(product.priceCents)
        out.raw("}")
        context(.web, user: user, into: &out)
    }

    mutating func emitCheckoutStarted(_ user: Int, into out: inout JSONBytes) {
        head("track", user: user, identity: webIdentity(), anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"event\":\"Checkout Started\",\"properties\":{\"value\":")
        out.cents(orderCents())
        out.raw(",\"currency\":\"USD\"}")
        context(.web, user: user, into: &out)
    }

    mutating func emitOrderCompleted(user: Int, identity: Identity, into out: inout JSONBytes) {
        head("track", user: user, identity: identity, anonymousId: userAnonymousId(user), into: &out)
        orderBody(into: &out)
        context(.server, user: user, into: &out)
    }

    /// An order total in cents: mostly small baskets, a tail of large ones.
    mutating func orderCents() -> Int {
        random.percent(85) ? 999 + random.below(15_000) : 15_000 + random.below(185_000)
    }

    mutating func orderBody(into out: inout JSONBytes) {
        out.raw(",\"event\":\"Order Completed\",\"properties\":{\"order_id\":\"ord-")
        out.raw(seedText)
        out.raw("-")
        out.int(index)
        out.raw("\",\"total\":")
        out.cents(orderCents())
        out.raw(random.percent(85) ? ",\"currency\":\"USD\"" : ",\"currency\":\"EUR\"")
        out.raw(",\"products\":")
        out.int(1 + random.below(4))
        out.raw("}")
    }

    mutating func emitScreen(_ user: Int, into out: inout JSONBytes) {
        head("screen", user: user, identity: webIdentity(), anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"name\":")
        out.string(SyntheticVocabulary.screens[random.below(SyntheticVocabulary.screens.count)])
        context(.ios, user: user, into: &out)
    }

    mutating func emitSearch(user: Int, identity: Identity, into out: inout JSONBytes) {
        head("track", user: user, identity: identity, anonymousId: userAnonymousId(user), into: &out)
        searchBody(into: &out)
        context(.web, user: user, into: &out)
    }

    mutating func searchBody(into out: inout JSONBytes) {
        out.raw(",\"event\":\"Products Searched\",\"properties\":{\"query\":")
        out.string(SyntheticVocabulary.searchQueries[random.below(SyntheticVocabulary.searchQueries.count)])
        out.raw("}")
    }

    mutating func emitFeatureUsed(_ user: Int, into out: inout JSONBytes) {
        head("track", user: user, identity: webIdentity(), anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"event\":\"Feature Used\",\"properties\":{\"feature\":")
        out.string(SyntheticVocabulary.features[random.below(SyntheticVocabulary.features.count)])
        out.raw("}")
        context(.web, user: user, into: &out)
    }

    /// A Sprig survey response in the shape of SPEC §3.3.
    mutating func emitSurveyResponse(_ user: Int, nps: Bool, into out: inout JSONBytes) {
        let hash = userHash(user)
        let identity: Identity = random.percent(60) ? .userAndNullAnonymous : .user
        head("track", user: user, identity: identity, anonymousId: userAnonymousId(user), into: &out)
        out.raw(",\"event\":\"SDK - Submitted - Survey Response\",\"properties\":{\"surveyName\":")
        out.raw(nps ? "\"NPS — Quarterly\",\"surveyId\":48213" : "\"Who are our users?\",\"surveyId\":48217")
        out.raw(",\"createdAt\":")
        out.time(time - Int64(random.below(3_000)))
        out.raw(",\"question\":")
        out.string(nps ? SyntheticVocabulary.npsQuestion : SyntheticVocabulary.roleQuestion)
        out.raw(nps ? ",\"questionType\":\"nps\"" : ",\"questionType\":\"multiplechoice\"")
        out.raw(",\"visitorId\":")
        out.int(100_000_000 + user)
        out.raw(",\"oldVisitorId\":")
        out.int(Int(hash % 90_000_000) + 10_000_000)
        out.raw(",\"responseGroupId\":")
        out.int(700_000_000 + index)
        out.raw(",\"response\":")
        if nps {
            out.int(npsAnswer())
        } else {
            // Most answer with the role they have; some pick another.
            let answer = random.percent(80) ? Int(role[user]) : random.below(SyntheticVocabulary.roles.count)
            out.string(SyntheticVocabulary.roles[answer])
        }
        out.raw(",\"email\":\"")
        writeEmail(user, into: &out)
        out.raw("\",\"attributes\":{\"plan\":")
        out.string(SyntheticVocabulary.plans[Int(plan[user])])
        out.raw(",\"company\":")
        out.string(SyntheticVocabulary.companies[Int((hash >> 16) % UInt64(SyntheticVocabulary.companies.count))])
        out.raw(",\"role\":")
        out.string(SyntheticVocabulary.roles[Int(role[user])])
        out.raw("},\"triggeringEvent\":")
        let trigger = random.below(SyntheticVocabulary.surveyTriggers.count + 2)
        if trigger < SyntheticVocabulary.surveyTriggers.count {
            out.string(SyntheticVocabulary.surveyTriggers[trigger])
        } else {
            out.raw("null")
        }
        out.raw("}")
        context(.sprig, user: user, into: &out)
    }

    mutating func npsAnswer() -> Int {
        var draw = random.below(npsTotal)
        for (score, weight) in SyntheticVocabulary.npsWeights.enumerated() {
            if draw < weight { return score }
            draw -= weight
        }
        return 10
    }
}
