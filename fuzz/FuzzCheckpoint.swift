// libFuzzer target for Checkpoint.decode (untrusted checkpoint files).
// Random mutations almost never keep the trailing CRC-32 valid, so each input is
// decoded three ways: as is (magic/version/CRC checks), with its last 4 bytes
// replaced by the CRC of the rest, and with the CRC of the whole input appended;
// the last two reach the structural parsing behind the CRC check.
// Any thrown CheckpointError is fine. A decoded checkpoint must re-encode to
// bytes that decode again and re-encode identically (round trip).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    fuzzDecode(bytes)
    let whole = CRC32.checksum(bytes, count: bytes.count)
    if bytes.count >= 4 {
        var fixed = bytes
        fuzzPutCRC(&fixed, at: fixed.count - 4, CRC32.checksum(fixed, count: fixed.count - 4))
        fuzzDecode(fixed)
    }
    bytes.append(contentsOf: [0, 0, 0, 0])
    fuzzPutCRC(&bytes, at: bytes.count - 4, whole)
    fuzzDecode(bytes)
    return 0
}

func fuzzPutCRC(_ b: inout [UInt8], at i: Int, _ crc: UInt32) {
    for s in 0..<4 { b[i + s] = UInt8(truncatingIfNeeded: crc >> (8 * UInt32(s))) }
}

func fuzzDecode(_ b: [UInt8]) {
    guard let c = try? Checkpoint.decode(b) else { return }
    let e = c.encode()
    let c2: Checkpoint
    do { c2 = try Checkpoint.decode(e) } catch { fatalError("re-encoded checkpoint does not decode: \(error.message)") }
    precondition(c2.encode() == e, "checkpoint round trip is not stable")
    precondition(c2.network == c.network && c2.model == c.model && c2.trainable == c.trainable
                 && c2.optimizerState == c.optimizerState && c2.scaling == c.scaling, "round trip lost data")
}
