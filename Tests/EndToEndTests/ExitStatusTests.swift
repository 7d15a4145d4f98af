import AudienceSync
import Testing

@testable import audience_sync

/// SPEC §8's exit statuses, decided by the command line from the library's error codes.
@Suite struct ExitStatusTests {
    @Test func exitStatuses() {
        #expect(AudienceSyncCommand.exitStatus(.locked) == 3)
        #expect(AudienceSyncCommand.exitStatus(.input) == 1)
        #expect(AudienceSyncCommand.exitStatus(.store) == 1)
        #expect(AudienceSyncCommand.exitStatus(.delivery) == 1)
        #expect(AudienceSyncCommand.exitStatus(.configuration) == 2)
        #expect(AudienceSyncCommand.exitStatus(.definition) == 2)
        #expect(AudienceSyncCommand.exitStatus(.usage) == 2)
    }
}
