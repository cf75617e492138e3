//! INCRBYFLOAT and HINCRBYFLOAT arithmetic, bit for bit as Redis does it on x86-64: in
//! C's 80-bit `long double` (a 64-bit significand), parsed by `strtold` and printed with
//! `%.17Lf` (then trailing zeros dropped, `ld2string(..., LD_STR_HUMAN)`).
//!
//! f64 is not enough: `0.1 + 0.2` is `0.30000000000000004` in f64 but `0.3` in Redis,
//! whose 64-bit significand leaves the error below the 17th decimal; `1e308 + 1e308`
//! overflows f64 but not `long double`. A [`LongDouble`] is a sign, a 64-bit significand
//! and a binary exponent. Every step is exact big-integer arithmetic followed by one
//! IEEE rounding (to nearest, ties to even), so parsing, adding and printing give what
//! the x87 unit and glibc give, subnormals included.

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// Smallest binary exponent of a significand's last bit: the subnormal floor,
/// 2^-16445 = 2^-16382 (least normal exponent) × 2^-63.
const MIN_EXP: i64 = -16445;
/// Largest binary exponent of a significand's last bit: below 2^16384 = 2^64 × 2^16320.
const MAX_EXP: i64 = 16320;
/// Significand bits of the x87 extended format.
const BITS: u64 = 64;
/// Longest text Redis's `string2ld` reads (`MAX_LONG_DOUBLE_CHARS`, 5 KiB, with its NUL).
const MAX_TEXT: usize = 5 * 1024;

/// A finite 80-bit extended-precision value: `(-1)^negative × significand × 2^exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongDouble {
    negative: bool,
    significand: u64,
    exp: i64,
}

/// A value that is not finite, or text that is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// Not a number `strtold` reads whole, NaN, or out of range.
    NotANumber,
    /// Infinite: `inf` itself, or an overflow of an addition.
    Infinite,
}

impl LongDouble {
    /// Zero.
    pub const ZERO: Self = Self {
        negative: false,
        significand: 0,
        exp: 0,
    };

    /// An integer, exactly (every i64 fits a 64-bit significand).
    pub fn from_i64(v: i64) -> Self {
        Self {
            negative: v < 0,
            significand: v.unsigned_abs(),
            exp: 0,
        }
    }

    /// Parses as Redis's `string2ld`: what `strtold` reads whole (decimal or hex, with
    /// an exponent, `inf`/`infinity`), no leading space, no NaN, and neither an overflow
    /// nor an underflow to zero (`ERANGE`). `inf` parses and is reported as
    /// [`Invalid::Infinite`]: the caller's sum then fails as Redis's does.
    ///
    /// # Errors
    /// [`Invalid::NotANumber`] or [`Invalid::Infinite`].
    pub fn parse(text: &[u8]) -> Result<Self, Invalid> {
        if text.is_empty() || text.len() >= MAX_TEXT {
            return Err(Invalid::NotANumber);
        }
        let (negative, body) = match text[0] {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let lower = body.to_ascii_lowercase();
        if lower == b"inf" || lower == b"infinity" {
            return Err(Invalid::Infinite);
        }
        let exact = if let Some(hex) = lower.strip_prefix(b"0x") {
            parse_hex(hex)?
        } else {
            parse_decimal(&lower)?
        };
        if exact.n.is_zero() {
            return Ok(Self {
                negative,
                ..Self::ZERO
            });
        }
        match round(negative, exact.n, exact.exp2, exact.sticky) {
            // strtold reports ERANGE for an overflow (HUGE_VAL) and for an underflow to
            // zero; string2ld refuses both.
            Ok(v) if v.significand == 0 => Err(Invalid::NotANumber),
            Ok(v) => Ok(v),
            Err(_) => Err(Invalid::NotANumber),
        }
    }

    /// `self + other`, rounded once to the extended format.
    ///
    /// # Errors
    /// [`Invalid::Infinite`] when the sum overflows.
    pub fn plus(self, other: Self) -> Result<Self, Invalid> {
        if other.significand == 0 {
            return Ok(if self.significand == 0 {
                // IEEE: -0 + -0 is -0, any other sum of zeros +0.
                Self {
                    negative: self.negative && other.negative,
                    ..Self::ZERO
                }
            } else {
                self
            });
        }
        if self.significand == 0 {
            return Ok(other);
        }
        let low = self.exp.min(other.exp);
        let a = BigUint::from(self.significand) << (self.exp - low);
        let b = BigUint::from(other.significand) << (other.exp - low);
        let (negative, n) = if self.negative == other.negative {
            (self.negative, a + b)
        } else if a >= b {
            (self.negative, a - b)
        } else {
            (other.negative, b - a)
        };
        if n.is_zero() {
            // x + (-x) is +0 when rounding to nearest.
            return Ok(Self::ZERO);
        }
        round(negative, n, low, false).map_err(|_| Invalid::Infinite)
    }

    /// The text Redis stores and replies: `%.17Lf` with trailing zeros and a trailing
    /// dot removed, and `-0` as `0`. Positional, never an exponent (a large value is
    /// printed with all its digits).
    pub fn to_text(self) -> String {
        let mut out = String::new();
        if self.negative {
            out.push('-');
        }
        if self.exp >= 0 {
            let n = BigUint::from(self.significand) << self.exp;
            out.push_str(&n.to_string());
        } else {
            // self × 10^17, rounded to an integer (ties to even, as glibc's printf).
            let shift = self.exp.unsigned_abs();
            let scaled = BigUint::from(self.significand) * BigUint::from(10u64.pow(17));
            let mut q = &scaled >> shift;
            let rem = &scaled - (&q << shift);
            let half = BigUint::one() << (shift - 1);
            if rem > half || (rem == half && q.bit(0)) {
                q += 1u32;
            }
            let mut digits = q.to_string();
            if digits.len() < 18 {
                digits.insert_str(0, &"0".repeat(18 - digits.len()));
            }
            let (int, frac) = digits.split_at(digits.len() - 17);
            out.push_str(int);
            let frac = frac.trim_end_matches('0');
            if !frac.is_empty() {
                out.push('.');
                out.push_str(frac);
            }
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

/// An exact value before rounding: `n × 2^exp2`, plus a nonzero remainder below its
/// last bit when `sticky`.
struct Exact {
    n: BigUint,
    exp2: i64,
    sticky: bool,
}

/// Rounds `n × 2^exp2` (+ a sticky remainder) to 64 significant bits, ties to even,
/// with the subnormal floor. `Err` on overflow; a significand of 0 on underflow.
fn round(negative: bool, n: BigUint, exp2: i64, sticky: bool) -> Result<LongDouble, ()> {
    let bits = i64::try_from(n.bits()).map_err(|_| ())?;
    let exp = (exp2 + bits - BITS as i64).max(MIN_EXP);
    let shift = exp - exp2;
    let (mut significand, mut exp) = if shift <= 0 {
        // Exact: fewer than 64 bits (or subnormal range with room to spare).
        let s = (n << shift.unsigned_abs()).to_u64().ok_or(())?;
        (s, exp2 + shift)
    } else {
        let shift = shift.unsigned_abs();
        let kept = &n >> shift;
        let half = n.bit(shift - 1);
        let below = sticky || n.trailing_zeros().is_some_and(|z| z < shift - 1);
        let mut s = kept.to_u64().ok_or(())?;
        if half && (below || s & 1 == 1) {
            s = s.wrapping_add(1);
            if s == 0 {
                // Carried out of 64 bits: 2^64 is 2^63 one exponent up.
                return finish(negative, 1 << 63, exp + 1);
            }
        }
        (s, exp)
    };
    if significand == 0 {
        exp = 0;
        significand = 0;
    }
    finish(negative, significand, exp)
}

fn finish(negative: bool, significand: u64, exp: i64) -> Result<LongDouble, ()> {
    if exp > MAX_EXP {
        return Err(());
    }
    Ok(LongDouble {
        negative,
        significand,
        exp,
    })
}

/// `digits[.digits][e[+-]digits]`, at least one digit in the significand.
fn parse_decimal(text: &[u8]) -> Result<Exact, Invalid> {
    let (digits, fraction, exp10) = split_number(text, b'e', u8::is_ascii_digit)?;
    let first = digits.iter().position(|&d| d != b'0');
    let Some(first) = first else {
        return Ok(Exact {
            n: BigUint::zero(),
            exp2: 0,
            sticky: false,
        });
    };
    let digits = &digits[first..];
    // value = D × 10^k, D the significant digits.
    let k = exp10 - fraction as i64;
    // Magnitude in decades: D × 10^k lies in [10^(len+k-1), 10^(len+k)).
    let magnitude = digits.len() as i64 + k;
    if magnitude > 4933 {
        // Above LDBL_MAX (1.19e4932): strtold overflows.
        return Err(Invalid::NotANumber);
    }
    if magnitude < -4952 {
        // Below half the least subnormal (3.6e-4951): strtold underflows to zero.
        return Err(Invalid::NotANumber);
    }
    let d = BigUint::parse_bytes(digits, 10).ok_or(Invalid::NotANumber)?;
    if k >= 0 {
        let n = d * BigUint::from(10u32).pow(u32::try_from(k).map_err(|_| Invalid::NotANumber)?);
        return Ok(Exact {
            n,
            exp2: 0,
            sticky: false,
        });
    }
    // D / 10^m: shift D left far enough that the quotient keeps 67+ bits (64, a rounding
    // bit and guards; a subnormal keeps fewer, and its rounding position lies further
    // down still); the remainder is the sticky bit.
    let m = u32::try_from(-k).map_err(|_| Invalid::NotANumber)?;
    let divisor = BigUint::from(10u32).pow(m);
    let want = (divisor.bits() + 67).saturating_sub(d.bits());
    let s = i64::try_from(want).map_err(|_| Invalid::NotANumber)?;
    let numerator = d << s.unsigned_abs();
    let q = &numerator / &divisor;
    let sticky = !(&numerator - &q * &divisor).is_zero();
    Ok(Exact {
        n: q,
        exp2: -s,
        sticky,
    })
}

/// Hex significand `h[.h][p[+-]d]` after `0x` (strtold's hex floats; `p` optional).
fn parse_hex(text: &[u8]) -> Result<Exact, Invalid> {
    let (digits, fraction, exp2) = split_number(text, b'p', u8::is_ascii_hexdigit)?;
    let n = BigUint::parse_bytes(&digits, 16).ok_or(Invalid::NotANumber)?;
    let exp2 = exp2 - 4 * fraction as i64;
    if n.is_zero() {
        return Ok(Exact {
            n,
            exp2: 0,
            sticky: false,
        });
    }
    let top = exp2 + n.bits() as i64;
    if top > MAX_EXP + BITS as i64 {
        return Err(Invalid::NotANumber);
    }
    if top < MIN_EXP - 1 {
        // Below half the least subnormal: strtold underflows to zero.
        return Err(Invalid::NotANumber);
    }
    Ok(Exact {
        n,
        exp2,
        sticky: false,
    })
}

/// The parts of `int[.frac][<marker>exp]` (at least one digit, each passing `digit`):
/// the significand's digits, int then frac; how many of them are the fraction; and the
/// exponent (0 when absent).
fn split_number(
    text: &[u8],
    marker: u8,
    digit: fn(&u8) -> bool,
) -> Result<(Vec<u8>, usize, i64), Invalid> {
    let (mantissa, exponent) = match text.iter().position(|&b| b == marker) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (int, frac) = match mantissa.iter().position(|&b| b == b'.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, &b""[..]),
    };
    if int.is_empty() && frac.is_empty() || !int.iter().chain(frac).all(digit) {
        return Err(Invalid::NotANumber);
    }
    let exp = match exponent {
        None => 0,
        Some(e) => parse_exponent(e)?,
    };
    Ok((int.iter().chain(frac).copied().collect(), frac.len(), exp))
}

/// `[+-]digits`, clamped far outside any exponent that matters (strtold saturates).
fn parse_exponent(e: &[u8]) -> Result<i64, Invalid> {
    let (negative, digits) = match e.first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::NotANumber);
    }
    let mut v: i64 = 0;
    for &d in digits {
        v = (v * 10 + i64::from(d - b'0')).min(1_000_000);
    }
    Ok(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(a: &str, b: &str) -> String {
        let a = LongDouble::parse(a.as_bytes()).unwrap();
        let b = LongDouble::parse(b.as_bytes()).unwrap();
        a.plus(b).unwrap().to_text()
    }

    #[test]
    fn sums_print_as_redis_prints_them() {
        // Each pair was checked against Redis 7.0.15 on x86-64 (INCRBYFLOAT).
        assert_eq!(sum("0.1", "0.2"), "0.3");
        assert_eq!(sum("0.3", "1.1"), "1.4");
        assert_eq!(sum("10.50", "0.1"), "10.6");
        assert_eq!(sum("10.6", "-5"), "5.6");
        assert_eq!(sum("5.0e3", "2.0e2"), "5200");
        assert_eq!(sum("3", "-3"), "0");
        assert_eq!(sum("-0", "-0"), "0");
        assert_eq!(sum("0", "-1e-20"), "0");
        assert_eq!(sum("0", "0x10"), "16");
        assert_eq!(sum("1", "0x1p-2"), "1.25");
        assert_eq!(sum("0", "1e-17"), "0.00000000000000001");
        assert_eq!(sum("0", "4e-18"), "0");
        assert_eq!(sum("0", "6e-18"), "0.00000000000000001");
        // The 64-bit significand shows from the 14th decimal of a six-digit value.
        assert_eq!(sum("0", "306222.6"), "306222.59999999999999432");
        // A tie at the 17th decimal rounds to even, as glibc's printf.
        assert_eq!(sum("0", "0.000003814697265625"), "0.00000381469726562");
        assert_eq!(
            sum("0.00000381469726562", "1000.1"),
            "1000.1000038146972656"
        );
        // Past f64's range: all 309 digits of the extended-precision sum.
        let big = sum("1e308", "1e308");
        assert_eq!(big.len(), 309, "{big}");
        assert!(big.starts_with("1999999999999999999933717593116912913211"));
    }

    #[test]
    fn parsing_refuses_what_string2ld_refuses() {
        for bad in [
            "", " 1", "1 ", "abc", "1e", "e5", ".", "-", "0x", "nan", "NaN", "1e5000", "1e-5000",
            "1..2", "1.2.3", "0x1p", "--1",
        ] {
            assert_eq!(
                LongDouble::parse(bad.as_bytes()),
                Err(Invalid::NotANumber),
                "{bad:?}"
            );
        }
        assert_eq!(LongDouble::parse(b"inf"), Err(Invalid::Infinite));
        assert_eq!(LongDouble::parse(b"-Infinity"), Err(Invalid::Infinite));
        for good in [
            ".5",
            "5.",
            "+1",
            "-0.0",
            "1E3",
            "0X1P3",
            "1e-4940",
            "1.18e4932",
        ] {
            assert!(LongDouble::parse(good.as_bytes()).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn overflow_is_infinite() {
        let max = LongDouble::parse(b"1.18e4932").unwrap();
        assert_eq!(max.plus(max), Err(Invalid::Infinite));
    }

    proptest::proptest! {
        /// Integers add exactly (|a + b| < 2^64 fits the significand).
        #[test]
        fn integers_add_exactly(a in -(1i64 << 62)..(1i64 << 62), b in -(1i64 << 62)..(1i64 << 62)) {
            let s = LongDouble::from_i64(a).plus(LongDouble::from_i64(b)).unwrap();
            proptest::prop_assert_eq!(s.to_text(), (a + b).to_string());
        }
    }
}
