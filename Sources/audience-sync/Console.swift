import AudienceSync
import Foundation

/// Writing to the terminal: results to standard output, messages to standard error.
enum Console {
    static func output(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    static func error(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Whether standard error is a terminal (progress lines are shown only then).
    static var standardErrorIsTerminal: Bool { isatty(2) == 1 }
}

extension Console {
    /// Rewrites the progress line on standard error; nil clears it.
    static func progress(_ text: String?) {
        FileHandle.standardError.write(Data(("\r\u{1B}[2K" + (text ?? "")).utf8))
    }
}

extension Console {
    /// A progress line of delivered messages per pair, for `sync` and `retire`: only when standard
    /// error is a terminal and not `--quiet` (cron logs get the counts from the `info` log lines).
    static func deliveryProgress(quiet: Bool) -> ((DeliveryProgress) -> Void)? {
        guard !quiet, standardErrorIsTerminal else { return nil }
        return { step in
            // A finished pair clears the line, so that log lines and the summary start on a clean one.
            progress(
                step.done >= step.total
                    ? nil : "\(step.key) → \(step.destination): \(step.done)/\(step.total) messages delivered")
        }
    }
}

extension Console {
    /// After `sync` or `retire`: clears the progress line (when one was shown) and prints the run's warnings.
    static func finishProgress(quiet: Bool, warnings: [String]) {
        if deliveryProgress(quiet: quiet) != nil { progress(nil) }
        for warning in warnings { error("warning: \(warning)") }
    }
}
