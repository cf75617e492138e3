//! Key hashes and the integer mixers the algorithms share.

use md5::{Digest, Md5};

/// The fast key hash used by every algorithm except the MD5-keyed ketama ring: XXH3-64.
///
/// XXH3 was measured against MD5 and FNV-1a in `benches/hashing.rs` (group `key_hash`);
/// it is the fastest of the three on keys of typical length and, unlike FNV-1a, mixes
/// every input bit into every output bit, which jump hash and Maglev rely on.
#[inline]
pub fn hash_key(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

/// The ketama key hash: the first four bytes of MD5(`key`) read little-endian, as in
/// libketama's `ketama_hashi` and twemproxy's `ketama_hash(key, len, 0)`.
#[inline]
pub fn ketama_hash(key: &[u8]) -> u32 {
    let digest = Md5::digest(key);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// The four ketama points of one MD5 digest: bytes `4i..4i+4` little-endian, `i` in 0..4.
#[inline]
pub(crate) fn ketama_points(name: &[u8]) -> [u32; 4] {
    let d = Md5::digest(name);
    std::array::from_fn(|i| {
        u32::from_le_bytes([d[4 * i], d[4 * i + 1], d[4 * i + 2], d[4 * i + 3]])
    })
}

/// The SplitMix64 finaliser: a bijection on `u64` whose output bits each depend on every
/// input bit. Used to derive per-(key, node) scores and retry sequences from one key hash.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seed for a node name, independent of [`hash_key`] of the same bytes.
#[inline]
pub(crate) fn name_seed(name: &str, salt: u64) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(name.as_bytes(), salt)
}

/// Maps a uniform `u64` onto `0..n` without a division (Lemire's multiply-shift).
#[inline]
pub(crate) fn fast_range(hash: u64, n: u64) -> u64 {
    ((u128::from(hash) * u128::from(n)) >> 64) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ketama_hash_is_md5_little_endian() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(ketama_hash(b""), 0xd98c_1dd4);
        assert_eq!(
            ketama_points(b""),
            [0xd98c_1dd4, 0x04b2_008f, 0x9809_80e9, 0x7e42_f8ec]
        );
    }

    #[test]
    fn xxh3_matches_the_published_empty_input_value() {
        // XXH3_64bits("") from the xxHash reference implementation.
        assert_eq!(hash_key(b""), 0x2D06_8005_38D3_94C2);
    }

    #[test]
    fn fast_range_stays_in_range() {
        for h in [0, 1, u64::MAX / 2, u64::MAX] {
            assert!(fast_range(h, 65_537) < 65_537);
        }
        assert_eq!(fast_range(u64::MAX, 10), 9);
    }
}
