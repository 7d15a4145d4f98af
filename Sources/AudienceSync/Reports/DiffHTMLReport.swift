/// `diff --format html` (SPEC §7): one self-contained page a person can open. Styles are
/// inline, there are no scripts and no external assets, so the file can be mailed or archived.
///
/// Every user-supplied string (keys, destination names, user ids, reasons) goes through
/// `escape`; nothing else is interpolated into the markup.
public enum DiffHTMLReport {
    public static func render(_ report: DiffReport) -> String {
        let now = Timestamp.format(report.now)
        let toSend = report.messageCount
        let pending = report.pairs.map(\.counts.pending).reduce(0, +)
        let invalid = report.pairs.map(\.invalid).reduce(0, +)
        var html = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>audience-sync diff at \(escape(now))</title>
            <style>\(style)</style>
            </head>
            <body>
            <header>
            <h1>What the next sync would send</h1>
            <p class="summary">Dry run at <time datetime="\(escape(now))">\(escape(now))</time> ·
            \(count(report.pairs.count, "pair")) · \(count(toSend, "message")) to send (pending work included) ·
            \(pending) pending · \(invalid) invalid</p>
            <p class="note">Counts equal what <code>audience-sync sync --force</code> at this time sends.
            Nothing was sent or changed to make this report.</p>
            </header>
            <main>

            """
        if report.pairs.isEmpty {
            html += "<p class=\"empty\">No (definition, destination) pair is selected.</p>\n"
        } else {
            html += overview(report.pairs)
        }
        for (index, pair) in report.pairs.enumerated() { html += section(pair, anchor: "pair-\(index + 1)") }
        html += "</main>\n</body>\n</html>\n"
        return html
    }

    /// A table of every pair, each row linking to its section.
    static func overview(_ pairs: [DiffReport.Pair]) -> String {
        var html = """
            <table class="overview">
            <thead><tr><th>Key</th><th>Destination</th><th>Sync</th><th>Entering</th><th>Exiting</th><th>Changed</th>\
            <th>Unchanged</th><th>Invalid</th><th>Pending</th></tr></thead>
            <tbody>

            """
        for (index, pair) in pairs.enumerated() {
            let state = pair.skipped != nil ? "skipped" : pair.firstSync ? "first sync" : pair.due ? "due" : "not due"
            let cells = [pair.counts.entered, pair.counts.exited, pair.counts.changed, pair.counts.unchanged, pair.invalid,
                pair.counts.pending].map { "<td>\($0 == 0 ? "<span class=\"zero\">0</span>" : "\($0)")</td>" }
            html += """
                <tr><td><a href="#pair-\(index + 1)"><code>\(escape(pair.key))</code></a></td>\
                <td>\(escape(pair.destination))</td><td>\(state)</td>\(cells.joined())</tr>

                """
        }
        return html + "</tbody>\n</table>\n"
    }

    /// One pair: header, times, the bar of changes, the counts, samples and problems.
    static func section(_ pair: DiffReport.Pair, anchor: String) -> String {
        let counts = pair.counts
        let audience = pair.kind == .audience
        var badges = [audience ? "<span class=\"badge\">audience</span>" : "<span class=\"badge\">computed trait</span>"]
        if pair.firstSync { badges.append("<span class=\"badge first\">first sync</span>") }
        if pair.skipped != nil {
            badges.append("<span class=\"badge skipped\">skipped</span>")
        } else {
            badges.append(pair.due ? "<span class=\"badge due\">due</span>" : "<span class=\"badge\">not due</span>")
        }
        let lastSynced = pair.lastSyncedAt.map { escape(Timestamp.format($0)) } ?? "never"
        var html = """
            <section class="pair" id="\(anchor)" data-key="\(escape(pair.key))" data-destination="\(escape(pair.destination))" \
            data-entered="\(counts.entered)" data-exited="\(counts.exited)" data-changed="\(counts.changed)" \
            data-unchanged="\(counts.unchanged)" data-invalid="\(pair.invalid)" data-pending="\(counts.pending)">
            <h2><code>\(escape(pair.key))</code> <span class="arrow">→</span> \(escape(pair.destination)) \(badges.joined(separator: " "))</h2>
            <p class="times">First sync: <b>\(pair.firstSync ? "yes" : "no")</b> · last synced: \(lastSynced) · \
            \(pair.skipped != nil ? "skipped by sync" : pair.due ? "due now" : "not due") · \
            next due: \(escape(Timestamp.format(pair.nextDueAt)))</p>

            """
        // The bar: each kind of change (and the unchanged rest) as a share of everyone concerned.
        var parts: [(kind: String, label: String, count: Int)] = [
            ("entered", audience ? "entered" : "new value", counts.entered),
            ("exited", audience ? "exited" : "value gone", counts.exited),
        ]
        if !audience { parts.append(("changed", "changed", counts.changed)) }
        parts.append(("unchanged", "unchanged", counts.unchanged))
        let total = parts.map(\.count).reduce(0, +)
        let description = parts.map { "\($0.count) \($0.label)" }.joined(separator: ", ")
        html += "<div class=\"bar\" role=\"img\" aria-label=\"\(description)\">"
        if total == 0 {
            html += "<span class=\"none\" style=\"width:100%\">no users</span>"
        } else {
            for part in parts where part.count > 0 {
                let width = Double(part.count) * 100 / Double(total)
                html += "<span class=\"\(part.kind)\" style=\"width:\(percent(width))\" title=\"\(part.count) \(part.label)\"></span>"
            }
        }
        html += "</div>\n<ul class=\"legend\">"
        for part in parts {
            html += "<li><i class=\"\(part.kind)\"></i>\(part.label) <b>\(part.count)</b></li>"
        }
        html += "</ul>\n"

        let rows: [(String, Int)] = [
            (audience ? "Members now" : "Users with a value now", counts.members), ("Synced (snapshot)", counts.synced),
            (audience ? "Entering" : "New values", counts.entered), (audience ? "Exiting" : "Values gone", counts.exited),
            ("Changed", counts.changed), ("Unchanged", counts.unchanged), ("Invalid (never sent)", pair.invalid),
            ("Pending from earlier runs", counts.pending),
        ]
        html += "<dl class=\"counts\">\n"
        for (label, value) in rows where !(audience && label == "Changed") {
            let warn = (label.hasPrefix("Invalid") || label.hasPrefix("Pending")) && value > 0 ? " warn" : ""
            html += "<div class=\"count\(warn)\"><dd>\(value)</dd><dt>\(label)</dt></div>\n"
        }
        html += "</dl>\n"

        let samples: [(PairChange.Kind, String, Int)] = [
            (.entered, audience ? "Entering" : "New values", counts.entered),
            (.exited, audience ? "Exiting" : "Values gone", counts.exited), (.changed, "Changed", counts.changed),
        ]
        var sampleHTML = ""
        for (kind, label, total) in samples {
            let users = pair.sample[kind] ?? []
            guard !users.isEmpty else { continue }
            let more = total > users.count ? " <span class=\"more\">and \(total - users.count) more</span>" : ""
            sampleHTML +=
                "<dt>\(label)</dt><dd>\(users.map { "<code>\(escape($0))</code>" }.joined(separator: " "))\(more)</dd>\n"
        }
        if !sampleHTML.isEmpty { html += "<dl class=\"samples\">\n\(sampleHTML)</dl>\n" }

        if !pair.invalidSample.isEmpty {
            html += "<div class=\"problem\"><p>\(count(pair.invalid, "message")) can never be sent:</p><ul>\n"
            for item in pair.invalidSample {
                html += "<li><code>\(escape(item.userId))</code>: \(escape(item.reason))</li>\n"
            }
            html += "</ul></div>\n"
        }
        if counts.pending > 0 {
            html +=
                "<p class=\"problem\">\(count(counts.pending, "message")) of an earlier run wait in the outbox; the next sync sends them first.</p>\n"
        }
        if let skipped = pair.skipped {
            html += "<p class=\"problem\">A sync skips this pair: \(escape(skipped)).</p>\n"
        }
        html += "</section>\n"
        return html
    }

    /// Text made safe for HTML element content and double- or single-quoted attribute values.
    public static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text.unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.unicodeScalars.append(character)
            }
        }
        return result
    }

    private static func count(_ value: Int, _ noun: String) -> String {
        "\(value) \(noun)\(value == 1 ? "" : "s")"
    }

    /// A CSS percentage with at most two decimals (`12.5%`).
    private static func percent(_ value: Double) -> String {
        let hundredths = Int((value * 100).rounded())
        let whole = hundredths / 100
        let fraction = hundredths % 100
        return fraction == 0 ? "\(whole)%" : "\(whole).\(fraction < 10 ? "0" : "")\(fraction)%"
    }

    static let style = """

        :root { --entered: #2e7d32; --exited: #c62828; --changed: #ef8f00; --unchanged: #b0bec5; --ink: #1f2933; }
        * { box-sizing: border-box; }
        body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
               margin: 0 auto; max-width: 980px; padding: 24px; background: #f7f8fa; }
        h1 { font-size: 24px; margin: 0 0 4px; }
        h2 { font-size: 17px; margin: 0 0 6px; font-weight: 600; }
        code { font: 13px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
        .summary { margin: 0; }
        .note, .times { color: #52606d; font-size: 13px; margin: 4px 0 10px; }
        .pair { background: #fff; border: 1px solid #dde2e8; border-radius: 8px; padding: 14px 18px; margin: 14px 0; }
        .arrow { color: #9aa5b1; }
        .badge { display: inline-block; font-size: 11px; font-weight: 600; text-transform: uppercase;
                 letter-spacing: .03em; padding: 1px 7px; border-radius: 9px; background: #e4e7eb; color: #3e4c59;
                 vertical-align: 2px; }
        .badge.first { background: #e3f2fd; color: #0d47a1; }
        .badge.due { background: #e8f5e9; color: #1b5e20; }
        .badge.skipped { background: #fff3e0; color: #8a4b00; }
        .bar { display: flex; height: 18px; border-radius: 4px; overflow: hidden; background: #eceff1; margin: 8px 0 4px; }
        .bar span { display: block; height: 100%; }
        .bar .none { color: #7b8794; font-size: 11px; line-height: 18px; text-align: center; }
        .entered { background: var(--entered); }
        .exited { background: var(--exited); }
        .changed { background: var(--changed); }
        .unchanged { background: var(--unchanged); }
        .legend { list-style: none; padding: 0; margin: 0 0 8px; font-size: 13px; display: flex; gap: 16px; flex-wrap: wrap; }
        .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 5px; }
        h2 code { font-size: 15px; font-weight: 700; }
        .counts { display: flex; flex-wrap: wrap; gap: 8px; margin: 8px 0; }
        .count { display: flex; flex-direction: column-reverse; min-width: 96px; padding: 5px 10px;
                 border: 1px solid #e4e7eb; border-radius: 6px; background: #fbfcfd; }
        .count dd { margin: 0; font-size: 18px; font-weight: 700; font-variant-numeric: tabular-nums; }
        .count dt { font-size: 11px; color: #52606d; }
        .count.warn { border-color: #f0a020; background: #fff8eb; }
        .count.warn dd { color: #b54708; }
        .overview { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #dde2e8;
                    font-size: 13px; margin: 14px 0; }
        .overview th, .overview td { padding: 4px 8px; border-bottom: 1px solid #eef0f3; text-align: left; }
        .overview th { background: #f0f2f5; font-weight: 600; }
        .overview td:nth-child(n+4), .overview th:nth-child(n+4) { text-align: right; font-variant-numeric: tabular-nums; }
        .overview a { color: #0b5cad; text-decoration: none; }
        .zero { color: #b8c0c8; }
        .samples { display: grid; grid-template-columns: max-content 1fr; gap: 3px 12px; margin: 8px 0 0; font-size: 13px; }
        .samples dt { color: #52606d; }
        .samples dd { margin: 0; overflow-wrap: anywhere; }
        .samples code { background: #f0f2f5; padding: 0 4px; border-radius: 3px; }
        .more { color: #7b8794; }
        .problem { color: #8a4b00; background: #fff8eb; border-left: 3px solid #f0a020; padding: 6px 10px; margin: 8px 0 0;
                   font-size: 13px; }
        .problem p, .problem ul { margin: 0; }
        .empty { color: #52606d; }

        """
}
