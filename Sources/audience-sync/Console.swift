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
