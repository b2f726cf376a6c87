//! The one hash of things that are kept: stable across Rust releases and machines (unlike
//! `DefaultHasher`), because what it makes is persisted (the LMDB owner keys here; a container's
//! default MAC in the core).

/// FNV-1a, 64 bit, of `bytes`.
pub fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::fnv1a64;

    /// The published test vectors of FNV-1a 64.
    #[test]
    fn fnv1a64_is_fnv1a() {
        assert_eq!(fnv1a64(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(*b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(*b"foobar"), 0x8594_4171_f739_67e8);
    }
}
