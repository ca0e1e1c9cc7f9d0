import Yams

extension ProxyConfigDecoder {
    /// `fault: { delay: { fixed, percent }, abort: { httpStatus | grpcStatus, percent } }`
    mutating func fault(_ node: ConfigNode) -> FaultConfig? {
        guard let fields = reader.mapping(node, keys: ["delay", "abort"]) else { return nil }
        guard fields.has("delay") || fields.has("abort") else {
            reader.report(node.path, "has neither delay nor abort; add e.g. \"abort: { httpStatus: 503, percent: 5 }\"")
            return nil
        }
        let delay = fields["delay"].flatMap { faultDelay($0) }
        let abort = fields["abort"].flatMap { faultAbort($0) }
        if fields.has("delay") && delay == nil || fields.has("abort") && abort == nil {
            return nil
        }
        return FaultConfig(delay: delay, abort: abort)
    }

    private mutating func faultDelay(_ node: ConfigNode) -> FaultDelay? {
        guard let fields = reader.mapping(node, keys: ["fixed", "percent"]) else { return nil }
        let fixed = reader.required("fixed", in: fields, hint: "add how long to hold requests, e.g. \"fixed: 100ms\"")
            .flatMap { reader.positiveDuration($0) }
        let share = reader.required("percent", in: fields, hint: "add the share of requests to delay, e.g. \"percent: 10\"")
            .flatMap { reader.percent($0) }
        guard let fixed, let share else { return nil }
        return FaultDelay(fixed: fixed, share: share)
    }

    private mutating func faultAbort(_ node: ConfigNode) -> FaultAbort? {
        guard let fields = reader.mapping(node, keys: ["httpStatus", "grpcStatus", "percent"]) else { return nil }
        let share = reader.required("percent", in: fields, hint: "add the share of requests to abort, e.g. \"percent: 5\"")
            .flatMap { reader.percent($0) }
        let answer: FaultAbort.Answer?
        switch (fields["httpStatus"], fields["grpcStatus"]) {
        case (let http?, nil):
            answer = reader.integer(http, in: 200...599, expected: "an HTTP status 200-599").map { .httpStatus($0) }
        case (nil, let grpc?):
            answer = reader.integer(grpc, in: 1...16, expected: "a gRPC status code 1-16, e.g. 14 (UNAVAILABLE)")
                .map { .grpcStatus($0) }
        case (nil, nil):
            reader.report(node.path, "has neither httpStatus nor grpcStatus; add e.g. \"httpStatus: 503\" or \"grpcStatus: 14\"")
            answer = nil
        case (_?, _?):
            reader.report(node.path, "has both httpStatus and grpcStatus; keep one (gRPC callers get the matching gRPC status either way)")
            answer = nil
        }
        guard let answer, let share else { return nil }
        return FaultAbort(answer: answer, share: share)
    }
}

extension NodeReader {
    /// A percentage from 0 to 100, decimals allowed (`0.5` is one request in 200).
    mutating func percent(_ node: ConfigNode) -> FaultShare? {
        number(node, in: 0...100, expected: "a percentage from 0 to 100").map(FaultShare.init(percent:))
    }

    /// A YAML integer or float within `range`.
    mutating func number(_ node: ConfigNode, in range: ClosedRange<Double>, expected: String) -> Double? {
        guard case let .scalar(scalar) = node.node, Self.hasTag(node.node, .int) || Self.hasTag(node.node, .float),
              let value = Double(scalar.string), value.isFinite, range.contains(value) else {
            reportExpected(expected, got: node)
            return nil
        }
        return value
    }

    /// A decimal integer within `range`.
    mutating func integer(_ node: ConfigNode, in range: ClosedRange<Int>, expected: String) -> Int? {
        guard let value = Self.decimalInteger(node.node), range.contains(value) else {
            reportExpected(expected, got: node)
            return nil
        }
        return value
    }
}
