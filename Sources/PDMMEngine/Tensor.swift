/// A view of `count` Q16.16 words somewhere in the arena or the model image.
/// One of the few handle types that hold an unsafe pointer; internal to the
/// engine (no public call returns one: views into an arena must not outlive it).
struct Tensor {
    @usableFromInline let base: UnsafeMutablePointer<Int32>
    let count: Int

    @inlinable init(base: UnsafeMutablePointer<Int32>, count: Int) {
        self.base = base
        self.count = count
    }

    @inlinable subscript(i: Int) -> Int32 {
        get { base[i] }
        nonmutating set { base[i] = newValue }
    }

    /// A sub-view of `n` words starting at word `offset`.
    @inlinable func slice(_ offset: Int, _ n: Int) -> Tensor {
        precondition(offset >= 0 && n >= 0 && offset + n <= count, "tensor slice out of range")
        return Tensor(base: base + offset, count: n)
    }

    /// Copies `count` words from `src` (same count).
    func copy(from src: Tensor) {
        precondition(src.count == count, "tensor copy: size mismatch")
        base.update(from: src.base, count: count)
    }

    func fill(_ v: Int32) { base.update(repeating: v, count: count) }
}
