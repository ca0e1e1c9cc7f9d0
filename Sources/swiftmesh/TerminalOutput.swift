import Foundation
import MeshConfig
import Yams

/// Rows as a plain text table, columns padded to their widest cell.
enum Table {
    static func render(rows: [[String: Any]], columns: [(title: String, key: String)]) -> String {
        let cells = rows.map { row in columns.map { cell(row[$0.key]) } }
        let widths = columns.indices.map { index in
            ([columns[index].title] + cells.map { $0[index] }).map(\.count).max() ?? 0
        }
        let lines = [columns.map(\.title)] + cells
        return lines.map { line in
            zip(line, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }
                .joined(separator: "   ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    private static func cell(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: "-"
        case let text as String: text
        case let list as [Any]: list.map { cell($0) }.joined(separator: ",")
        case let labels as [String: String]: PolicyDestination.labelsText(labels)
        case let object as [String: Any]: object.sorted { $0.key < $1.key }.map { "\($0.key)=\(cell($0.value))" }.joined(separator: " ")
        case let value?: "\(value)"
        }
    }
}

/// JSON as block-style YAML, keeping every value's type (a string "90"
/// stays a string): the JSON is read as YAML, which it is, and written again.
enum YAMLOutput {
    static func render(json: Data) throws -> String {
        guard let node = try Yams.compose(yaml: String(decoding: json, as: UTF8.self)) else { return "" }
        return try Yams.serialize(node: block(node))
    }

    private static func block(_ node: Node) -> Node {
        switch node {
        case .mapping(let mapping):
            return .mapping(Node.Mapping(mapping.map { (block($0.key), block($0.value)) }, mapping.tag, .block))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(block), sequence.tag, .block))
        case .scalar(let scalar):
            return .scalar(Node.Scalar(scalar.string, scalar.tag, .any))
        case .alias:
            return node
        }
    }
}
