//! HAL9 amounts as decimal strings ("12.5"), exact in both directions: the
//! token has 18 decimals and every amount is an integer number of its
//! smallest unit, so no floating point is ever involved.

use alloy::primitives::U256;

use crate::error::{MarketError, Result};

/// Decimals of the HAL9 token.
pub const DECIMALS: usize = 18;

/// Parses a decimal token amount ("1", "12.5", "0.000000000000000001")
/// into base units. Rejects signs, exponents, more than 18 fractional
/// digits and values that overflow 256 bits.
pub fn parse_tokens(s: &str) -> Result<U256> {
    let bad = |why: &str| MarketError::InvalidParam {
        name: "amount",
        expected: format!("a decimal HAL9 amount such as 12.5 ({why})"),
        found: format!("{s:?}"),
    };
    let t = s.trim().replace('_', "");
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t.as_str(), ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad("empty"));
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("digits and one dot only"));
    }
    if frac.len() > DECIMALS {
        return Err(bad("at most 18 digits after the dot"));
    }
    let int = if int.is_empty() { "0" } else { int };
    let whole = U256::from_str_radix(int, 10).map_err(|_| bad("too large"))?;
    let padded = format!("{frac:0<DECIMALS$}");
    let frac = U256::from_str_radix(&padded, 10).map_err(|_| bad("digits"))?;
    whole
        .checked_mul(U256::from(10u64).pow(U256::from(DECIMALS)))
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(|| bad("too large"))
}

/// Formats base units as a decimal token amount without trailing zeros
/// ("12.5", "1", "0.000000000000000001"); `parse_tokens` reads it back.
pub fn format_tokens(v: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(DECIMALS));
    let (whole, frac) = (v / unit, v % unit);
    if frac.is_zero() {
        return whole.to_string();
    }
    let f = format!("{:0>DECIMALS$}", frac.to_string());
    format!("{whole}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        let e = U256::from(10u64).pow(U256::from(18));
        assert_eq!(parse_tokens("1").unwrap(), e);
        assert_eq!(
            parse_tokens("12.5").unwrap(),
            e * U256::from(25) / U256::from(2)
        );
        assert_eq!(parse_tokens(".5").unwrap(), e / U256::from(2));
        assert_eq!(parse_tokens("0.000000000000000001").unwrap(), U256::from(1));
        assert_eq!(parse_tokens("1_000").unwrap(), e * U256::from(1000));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1.2.3",
            "0.0000000000000000001",
            "abc",
            "1 000",
        ] {
            assert!(parse_tokens(bad).is_err(), "{bad:?} must be rejected");
        }
        let max = format!("{}", U256::MAX);
        assert!(parse_tokens(&max).is_err(), "overflow");
    }

    #[test]
    fn formats_without_trailing_zeros() {
        assert_eq!(format_tokens(parse_tokens("12.50").unwrap()), "12.5");
        assert_eq!(format_tokens(U256::ZERO), "0");
        assert_eq!(format_tokens(U256::from(1)), "0.000000000000000001");
        assert_eq!(
            format_tokens(parse_tokens("1000000000").unwrap()),
            "1000000000"
        );
    }

    proptest! {
        #[test]
        fn format_then_parse_is_identity(raw in any::<[u64; 3]>()) {
            let v = U256::from_limbs([raw[0], raw[1], raw[2], 0]);
            prop_assert_eq!(parse_tokens(&format_tokens(v)).unwrap(), v);
        }
    }
}
