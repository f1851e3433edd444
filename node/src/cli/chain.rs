//! What the chain commands share: the `--rpc-url` override, the home and
//! `--json` flags, loading the `[chain]` settings, and formatting amounts,
//! times and transactions for people.

use alloy::primitives::{Address, U256};
use alloy::rpc::types::TransactionReceipt;
use clap::Args;
use eyre::bail;
use hal9_market::units::{format_tokens, parse_tokens};

use super::HomeArgs;
use crate::config::{ChainConfig, NodeConfig};
use crate::home::{CONFIG_FILE, Home};

/// Chain settings that a flag or `HAL9_RPC_URL` overrides (flag > env > file).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Chain")]
pub(crate) struct ChainOverrides {
    /// Settlement chain JSON-RPC endpoint; overrides `chain.rpc_url`.
    #[arg(long, global = true, env = "HAL9_RPC_URL", value_name = "URL")]
    pub(crate) rpc_url: Option<String>,
}

impl ChainOverrides {
    /// Applies the overrides to `c`.
    pub(crate) fn apply(&self, c: &mut ChainConfig) {
        if let Some(u) = &self.rpc_url {
            c.rpc_url = u.clone();
        }
    }
}

/// Flags of every chain command.
#[derive(Debug, Clone, Args)]
pub(crate) struct ChainArgs {
    #[command(flatten)]
    pub(crate) home: HomeArgs,
    /// Print JSON (for scripts).
    #[arg(long)]
    pub(crate) json: bool,
}

/// A chain command's context: the home and its chain settings.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    pub(crate) home: Home,
    pub(crate) cfg: ChainConfig,
    pub(crate) json: bool,
}

impl Ctx {
    /// Loads `config.toml` from the home (defaults when absent) and applies the overrides.
    pub(crate) fn load(args: &ChainArgs, overrides: &ChainOverrides) -> eyre::Result<Self> {
        let home = args.home.home();
        let mut cfg = NodeConfig::load(&home.path(CONFIG_FILE))?;
        overrides.apply(&mut cfg.chain);
        cfg.validate()?;
        Ok(Self {
            home,
            cfg: cfg.chain,
            json: args.json,
        })
    }

    /// Prints `value` as JSON with `--json`, else runs `text`.
    pub(crate) fn emit(&self, value: serde_json::Value, text: impl FnOnce()) -> eyre::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            text();
        }
        Ok(())
    }
}

/// clap parser of a decimal HAL9 amount.
pub(crate) fn amount(s: &str) -> Result<U256, String> {
    parse_tokens(s).map_err(|e| e.to_string())
}

/// clap parser of an amount that must be positive.
pub(crate) fn positive_amount(s: &str) -> Result<U256, String> {
    let v = amount(s)?;
    if v.is_zero() {
        return Err("the amount must be greater than zero".into());
    }
    Ok(v)
}

/// "12.5 HAL9".
pub(crate) fn hal9(v: U256) -> String {
    format!("{} HAL9", format_tokens(v))
}

/// A lock multiplier in basis points as "2.5x".
pub(crate) fn multiplier(bps: U256) -> String {
    let b = bps.to::<u128>();
    let frac = format!("{:04}", b % 10_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}x", b / 10_000)
    } else {
        format!("{}.{frac}x", b / 10_000)
    }
}

/// A unix time as "2026-11-22 06:00:00 UTC (in 3d 2h)".
pub(crate) fn when(at: u64, now: u64) -> String {
    let days = (at / 86_400) as i64;
    let s = at % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC ({})",
        s / 3_600,
        s % 3_600 / 60,
        s % 60,
        hal9_market::revert::relative(at, now)
    )
}

/// Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// "tx 0x.. in block N".
pub(crate) fn tx_line(r: &TransactionReceipt) -> String {
    match r.block_number {
        Some(b) => format!("tx {} in block {b}", r.transaction_hash),
        None => format!("tx {}", r.transaction_hash),
    }
}

/// The JSON of a mined transaction.
pub(crate) fn tx_json(r: &TransactionReceipt) -> serde_json::Value {
    serde_json::json!({
        "tx": r.transaction_hash.to_string(),
        "block": r.block_number,
        "gas_used": r.gas_used,
    })
}

/// Days to seconds, bounded.
pub(crate) fn days_to_secs(days: u64) -> eyre::Result<u64> {
    match days.checked_mul(86_400) {
        Some(s) if days > 0 => Ok(s),
        _ => bail!("--lock takes a number of days from 1 up, found {days}"),
    }
}

/// The account a read command is about: the one given, else the operator's.
pub(crate) fn who(ctx: &Ctx, given: Option<Address>) -> eyre::Result<Address> {
    match given {
        Some(a) => Ok(a),
        None => crate::chain::client::operator_address(&ctx.home, &ctx.cfg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_multipliers() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert!(when(1_763_769_600, 1_763_769_600).starts_with("2025-11-22 00:00:00 UTC"));
        assert_eq!(multiplier(U256::from(10_000)), "1x");
        assert_eq!(multiplier(U256::from(25_000)), "2.5x");
        assert_eq!(multiplier(U256::from(15_479)), "1.5479x");
        assert!(positive_amount("0").is_err());
        assert_eq!(hal9(amount("12.50").unwrap()), "12.5 HAL9");
    }
}
