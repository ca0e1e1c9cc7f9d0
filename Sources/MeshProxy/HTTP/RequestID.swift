/// Request ids in UUID version 4 form (`xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`),
/// generated without Foundation so that a request costs one small string.
enum RequestID {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func generate(using random: inout FastRandom) -> String {
        var high = random.next()
        var low = random.next()
        // Version 4 and the RFC 9562 variant bits, so tools that parse UUIDs accept it.
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            func put(_ value: UInt64, nibbles: Int) {
                var shift = (nibbles - 1) * 4
                for _ in 0..<nibbles {
                    buffer[index] = hexDigits[Int((value >> UInt64(shift)) & 0xF)]
                    index += 1
                    shift -= 4
                }
            }
            func dash() {
                buffer[index] = UInt8(ascii: "-")
                index += 1
            }
            put(high >> 32, nibbles: 8)
            dash()
            put(high >> 16, nibbles: 4)
            dash()
            put(high, nibbles: 4)
            dash()
            put(low >> 48, nibbles: 4)
            dash()
            put(low, nibbles: 12)
            return index
        }
    }
}
