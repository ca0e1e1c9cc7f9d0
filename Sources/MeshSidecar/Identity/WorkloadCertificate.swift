import Foundation
import MeshConfig

/// The sidecar's certificate for its service, with the private key it was
/// issued over (made in this process; never sent, written or logged) and the
/// roots that other sidecars' certificates chain to.
struct WorkloadCertificate: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// spiffe://<trust-domain>/service/<service>
    var identity: String
    var certificatePEM: String
    var privateKeyPEM: String
    var trustBundlePEM: String
    var notAfter: Date
    /// When this sidecar received it.
    var received: Date

    /// Two thirds into the lifetime left when it arrived: the last third is
    /// the margin for a control plane that is away for a while.
    var renewAt: Date {
        received.addingTimeInterval(max(0, notAfter.timeIntervalSince(received)) * 2 / 3)
    }

    var trustDomain: String {
        SPIFFEID.parse(identity)?.trustDomain ?? ""
    }

    /// Never the key, whoever prints one.
    var description: String {
        "WorkloadCertificate(identity: \(identity), notAfter: \(notAfter))"
    }

    var debugDescription: String { description }
}
