//! What `fund` and `demo` show of a session's cost (priced by the core's
//! [`livepay_core::engine::spend`]): the JSON fields, the terminal line, `--eth-usd`.

use livepay_core::Duration;
pub(crate) use livepay_core::engine::spend::{Pricing, RunnerPrice, Spend, SpendSource};
use serde_json::{Value, json};

/// Wei in one ETH.
const WEI_PER_ETH: u128 = 1_000_000_000_000_000_000;
/// `--eth-usd`: a positive, finite number of US dollars per ETH.
pub(crate) fn eth_usd(text: &str) -> Result<f64, String> {
    let rate = text
        .trim()
        .parse::<f64>()
        .map_err(|_| "expected a number of US dollars per ETH, such as 2000".to_owned())?;
    if !(rate.is_finite() && rate > 0.0) {
        return Err("must be a positive number of US dollars per ETH, such as 2000".to_owned());
    }
    Ok(rate)
}

/// The fields the `--json` summary gets: `prepay_s`, `billed_s`, `spend_wei` (a decimal
/// string, or null), `spend_usd` (a number, or null) and `spend_source` (`"payments"`,
/// `"discovery"`, or null).
pub(crate) fn json_fields(spend: &Spend) -> Value {
    json!({
        "prepay_s": seconds(spend.prepay),
        "billed_s": seconds(spend.billed),
        "spend_wei": spend.wei.map(|w| w.to_string()),
        "spend_usd": spend.usd,
        "spend_source": spend.source.map(|s| match s {
            SpendSource::Payments => "payments",
            SpendSource::RunnerPrice => "discovery",
        }),
    })
}

/// One line for the terminal: `spend 10000000000 wei (0.00000001 ETH) · $0.000020 · 10.0s
/// of service bought`, or what is missing.
pub(crate) fn line(spend: &Spend) -> String {
    let bought = format!("{:.1}s of service bought", seconds(spend.bought()));
    let Some(wei) = spend.wei else {
        return format!("spend unknown (no price known) · {bought}");
    };
    let usd = spend
        .usd
        .map_or_else(|| "pass --eth-usd for US dollars".to_owned(), usd_text);
    format!("spend {wei} wei ({} ETH) · {usd} · {bought}", eth_text(wei))
}

fn seconds(d: Duration) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let micros = d.as_micros() as f64;
    micros / 1e6
}

/// `wei` in ETH, exactly, without trailing zeros.
fn eth_text(wei: u128) -> String {
    let whole = wei / WEI_PER_ETH;
    let fraction = wei % WEI_PER_ETH;
    if fraction == 0 {
        return whole.to_string();
    }
    let digits = format!("{fraction:018}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// US dollars with cents, or two significant digits below a cent.
fn usd_text(usd: f64) -> String {
    if usd >= 0.01 || usd <= 0.0 {
        return format!("${usd:.2}");
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let decimals = ((-usd.log10().floor()) as usize + 1).min(20);
    format!("${usd:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_spend_says_so() {
        let unknown = Spend::default();
        assert!(line(&unknown).starts_with("spend unknown"), "{}", line(&unknown));
        let json = json_fields(&unknown);
        assert!(
            json["spend_wei"].is_null() && json["spend_usd"].is_null(),
            "{json}"
        );
    }

    #[test]
    fn eth_usd_takes_positive_finite_numbers_only() {
        assert_eq!(eth_usd("2000"), Ok(2000.0));
        assert_eq!(eth_usd(" 1.5 "), Ok(1.5));
        for bad in ["0", "-1", "nan", "NaN", "inf", "abc", ""] {
            assert!(eth_usd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_read_well() {
        assert_eq!(eth_text(10_000_000_000), "0.00000001");
        assert_eq!(eth_text(2 * WEI_PER_ETH), "2");
        assert_eq!(eth_text(WEI_PER_ETH + WEI_PER_ETH / 2), "1.5");
        assert_eq!(usd_text(12.345), "$12.35");
        assert_eq!(usd_text(0.00002), "$0.000020");
        assert_eq!(usd_text(0.0), "$0.00");
        let spend = Spend {
            prepay: Duration::from_secs(10),
            wei: Some(10_000_000_000),
            usd: Some(0.00002),
            ..Spend::default()
        };
        assert_eq!(
            line(&spend),
            "spend 10000000000 wei (0.00000001 ETH) · $0.000020 · 10.0s of service bought"
        );
    }
}
