//! What the plugin promises a host, from docs/CONTRACT.md and the plugin's descriptor.

/// The CLAP plugin ID (hosts save it in projects: never change it).
pub const CLAP_ID: &str = "com.restyle.restyle";

/// The plugin's display name.
pub const NAME: &str = "Restyle";

/// The sample rate the models run at; the STFT numbers below are in samples at this rate.
pub const MODEL_SAMPLE_RATE: f64 = 48_000.0;

/// The STFT's own delay at the model rate: `2 * hop - 1`, the synthesis window's support less
/// one, because the first finished sample of the newest frame goes out in the same call that
/// received its last input sample. (docs/CONTRACT.md says 256; the engine's STFT, in
/// `restyle_dsp::stft`, has 255, and that is what this checks.)
pub const STFT_LATENCY_SAMPLES: u32 = 255;

/// The STFT hop at the model rate; the pipeline delay adds whole hops to the latency.
pub const HOP_SAMPLES: u32 = 128;

/// The most latency a real-time effect may report: 2048 samples is 42.7 ms at 48 kHz, 46.4 ms at
/// 44.1 kHz, already more than a player tolerates on a live input.
pub const MAX_LATENCY_SAMPLES: u32 = 2048;

/// How the parameter's value moves, as a CLAP host sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    /// Stepped, with CLAP values `0 ..= max` (nice-plug maps an int or bool parameter's steps to
    /// these integers).
    Stepped { max: f64 },
    /// Continuous; nice-plug exposes it normalized to `0 ..= 1`.
    Continuous,
}

/// A parameter as CONTRACT.md lists it.
#[derive(Debug, Clone, Copy)]
pub struct ParamSpec {
    /// The stable string ID in the plugin's `#[id = "..."]`.
    pub string_id: &'static str,
    /// The display name, or `None` where the name follows the loaded style pack (the blends).
    pub name: Option<&'static str>,
    pub range: Range,
    /// The default as a CLAP value (normalized for continuous parameters), where the contract
    /// fixes one that does not depend on the parameter's skew.
    pub default: Option<f64>,
    /// Whether this is the host's bypass parameter.
    pub is_bypass: bool,
}

/// Every parameter of CONTRACT.md's table.
pub fn param_specs() -> Vec<ParamSpec> {
    // nice-plug's `#[nested(array)]` IDs: `blend` + `_1` ... `_8`. (docs/CONTRACT.md writes
    // `blend1` ... `blend8`; the plugin's own `parameter_ids_are_stable` test pins these.)
    const BLEND_IDS: [&str; 8] = [
        "blend_1", "blend_2", "blend_3", "blend_4", "blend_5", "blend_6", "blend_7", "blend_8",
    ];
    let mut specs = vec![ParamSpec {
        string_id: "style",
        name: Some("Style"),
        range: Range::Stepped { max: 7.0 },
        default: Some(0.0),
        is_bypass: false,
    }];
    specs.extend(BLEND_IDS.iter().map(|&string_id| ParamSpec {
        string_id,
        name: None,
        range: Range::Continuous,
        default: Some(0.0),
        is_bypass: false,
    }));
    specs.extend([
        ParamSpec {
            string_id: "mix",
            name: Some("Style Mix"),
            range: Range::Continuous,
            default: Some(1.0),
            is_bypass: false,
        },
        ParamSpec {
            string_id: "in_gain",
            name: Some("Input Gain"),
            range: Range::Continuous,
            default: None,
            is_bypass: false,
        },
        ParamSpec {
            string_id: "out_gain",
            name: Some("Output Gain"),
            range: Range::Continuous,
            default: None,
            is_bypass: false,
        },
        ParamSpec {
            string_id: "bypass",
            name: Some("Bypass"),
            range: Range::Stepped { max: 1.0 },
            default: Some(0.0),
            is_bypass: true,
        },
    ]);
    specs
}

/// The CLAP parameter ID nice-plug derives from a string ID (`nice_plug::wrapper::util::
/// hash_param_id`): hosts store these numbers in projects and automation, so a parameter keeps
/// its ID exactly as long as its string ID stays the same.
pub fn clap_param_id(string_id: &str) -> u32 {
    let mut hash: u32 = 0;
    for byte in string_id.bytes() {
        hash = hash.wrapping_mul(31).wrapping_add(u32::from(byte));
    }
    // VST3 reserves the top bit for host parameters; nice-plug clears it for every format.
    hash & !(1 << 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_id_hash_matches_nice_plug() {
        // 'm' = 109, 'i' = 105, 'x' = 120: (109 * 31 + 105) * 31 + 120
        assert_eq!(clap_param_id("mix"), (109 * 31 + 105) * 31 + 120);
        assert_eq!(clap_param_id(""), 0);
        assert!(clap_param_id("a_rather_long_parameter_id") < 1 << 31);
    }

    #[test]
    fn contract_lists_thirteen_distinct_parameters() {
        let specs = param_specs();
        assert_eq!(specs.len(), 13);
        let mut ids: Vec<u32> = specs.iter().map(|s| clap_param_id(s.string_id)).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 13, "two string IDs hash to the same CLAP ID");
    }
}
