#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import NIOCore

extension DNSResolver {
    /// The first `nameserver` line of /etc/resolv.conf (default path), falling back to 127.0.0.1:53.
    ///
    /// Reads the file synchronously: meant for startup, not for an event loop.
    public static func systemResolverAddress(resolvConfPath: String = "/etc/resolv.conf") -> SocketAddress {
        if let contents = try? String(contentsOfFile: resolvConfPath, encoding: .utf8),
            let address = firstNameserver(inResolvConf: contents)
        {
            return address
        }
        return fallbackResolverAddress
    }

    /// Where a resolver is expected when resolv.conf names none: the same
    /// default the C library uses.
    static var fallbackResolverAddress: SocketAddress {
        // A constant literal, not input: parsing it cannot fail.
        try! SocketAddress(ipAddress: "127.0.0.1", port: 53)
    }

    /// The first `nameserver` entry that is an IP literal, on port 53.
    ///
    /// Comments start with `#` or `;`. An entry that is not an IP literal is
    /// passed over for the next one rather than ending the search with nothing.
    static func firstNameserver(inResolvConf contents: String) -> SocketAddress? {
        for line in contents.split(whereSeparator: \.isNewline) {
            let content = line.prefix { $0 != "#" && $0 != ";" }
            let fields = content.split(whereSeparator: \.isWhitespace)
            guard fields.count >= 2, fields[0] == "nameserver" else { continue }
            if let address = try? SocketAddress(ipAddress: String(fields[1]), port: 53) {
                return address
            }
        }
        return nil
    }
}
