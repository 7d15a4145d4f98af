/// The product's name and version, as sent in `context.library` and printed by `--version`.
public enum AudienceSyncVersion {
    public static let name = "audience-sync"
    public static let version = "0.1.0"
}
