import Foundation
import Testing

@testable import AudienceSync

/// `diff --format html`: a self-contained page with every pair, its counts, and nothing unescaped.
@Suite struct DiffHTMLReportTests {
    @Test(arguments: [
        ("plain", "plain"), ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
        (#"a&b "c" 'd'"#, "a&amp;b &quot;c&quot; &#39;d&#39;"), ("é → ✓", "é → ✓"),
    ])
    func escapesMarkupCharacters(text: String, escaped: String) {
        #expect(DiffHTMLReport.escape(text) == escaped)
    }

    @Test func userSuppliedStringsAreEscaped() {
        var counts = PairCounts()
        counts.members = 2
        counts.entered = 2
        let pair = DiffReport.Pair(
            key: "evil_key", kind: .computedTrait, destination: #"out"><img src=x onerror=alert(1)>"#, firstSync: true,
            due: true, nextDueAt: demoNow, lastSyncedAt: nil, counts: counts, invalid: 1,
            invalidSample: [InvalidMessage(userId: "<b>big</b>", reason: "too <big>")],
            sample: [.entered: ["<script>alert('u')</script>", "u&1"], .exited: [], .changed: []], skipped: nil)
        let html = DiffHTMLReport.render(DiffReport(now: demoNow, pairs: [pair]))
        #expect(!html.contains("<script>"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<b>big</b>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;u&#39;)&lt;/script&gt;"))
        #expect(html.contains("u&amp;1"))
        #expect(html.contains("out&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"))
        #expect(html.contains("too &lt;big&gt;"))
    }

    @Test(arguments: StoreKind.keepingSyncState)
    func theDemoDiffHasEveryPairWithItsCountsAndNeedsNothingOutside(kind: StoreKind) async throws {
        try await SyncHarness.with(kind) { (harness: SyncHarness) async throws in
            try await harness.ingest("events.ndjson")
            _ = try await harness.sync(now: demoNow)
            try await harness.ingest("events-later.ndjson", now: demoLater)
            let report = try await harness.syncer().dryRun(SyncSelection(force: true), now: demoLater)
            let html = DiffHTMLReport.render(report)
            #expect(html.hasPrefix("<!DOCTYPE html>"))
            #expect(html.contains(Timestamp.format(demoLater)))
            // Self-contained: no scripts, no external styles, images or fonts.
            for forbidden in ["<script", "<link", "src=", "@import", "url(", "http://", "https://"] {
                #expect(!html.contains(forbidden), "\(forbidden)")
            }
            #expect(html.components(separatedBy: "<section class=\"pair\"").count - 1 == report.pairs.count)
            for pair in report.pairs {
                let c = pair.counts
                let marker =
                    #"data-key="\#(pair.key)" data-destination="\#(pair.destination)" data-entered="\#(c.entered)" "#
                    + #"data-exited="\#(c.exited)" data-changed="\#(c.changed)" data-unchanged="\#(c.unchanged)" "#
                    + #"data-invalid="\#(pair.invalid)" data-pending="\#(c.pending)""#
                #expect(html.contains(marker), "\(pair.key) → \(pair.destination)")
            }
            // EVENTS.md: u_kai and u_lea enter the detractors; u_ben leaves the engaged non-buyers.
            let nps = try #require(html.range(of: #"data-key="nps_detractors" data-destination="outbox""#))
            let section = String(html[nps.lowerBound...]).components(separatedBy: "</section>")[0]
            #expect(section.contains("<code>u_kai</code> <code>u_lea</code>"))
            #expect(section.contains("<div class=\"count\"><dd>5</dd><dt>Members now</dt></div>"))
            #expect(html.contains("<code>u_ben</code>"))
        }
    }
}
