//! The safetensors loader on arbitrary bytes (first byte even) and on checkpoints with the right
//! tensor names whose headers are hostile (first byte odd): wrong or unknown dtypes, shapes with
//! huge or zero dimensions, offsets that overlap, run backwards or past the end, missing and
//! extra tensors, and data of any length. A checkpoint that loads is run forward.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use regnet_runtime::spec::Architecture;
use regnet_runtime::weights::{Scheme, expected_tensors, load_bytes};
use regnet_runtime::{Network, Options, Workspace};

/// A small network with every kind of tensor: SE, a projection, grouped convolutions.
const SPEC: &str = "depths: [1, 2]\nwidths: [8, 16]\ngroup_widths: [4, 8]\n\
                    bottleneck_ratios: [1, 2]\nse: true\nstem_w: 8\nnum_classes: 5\n\
                    resolution: 16\n";

static NETWORK: LazyLock<regnet_runtime::spec::CompiledSpec> =
    LazyLock::new(|| regnet_runtime::spec::compile_str(SPEC, "fuzz.yaml").expect("a valid spec"));
static ARCHITECTURE: LazyLock<Architecture<'static>> =
    LazyLock::new(|| NETWORK.architecture("Fuzz"));

/// Where a checkpoint that loads is written, to go through the file path users take.
static FILE: LazyLock<PathBuf> = LazyLock::new(|| {
    std::env::temp_dir().join(format!("regnet-fuzz-{}.safetensors", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        match hostile_checkpoint(&mut Unstructured::new(rest)) {
            Ok(bytes) => bytes,
            Err(_) => return,
        }
    };
    let origin = Path::new("fuzz.safetensors");
    if load_bytes(&bytes, origin, &ARCHITECTURE, None).is_err() {
        return;
    }
    std::fs::write(&*FILE, &bytes).expect("the temporary directory is writable");
    let network =
        Network::load(*ARCHITECTURE, &FILE, None).expect("loads from memory, so from the file");
    // One thread: a pool per input would cost more than the tiny forward pass.
    let options = Options {
        threads: 1,
        ..Options::default()
    };
    let mut workspace =
        Workspace::with_options(&ARCHITECTURE, 1, options).expect("a small workspace");
    let input = vec![0.5f32; 3 * 16 * 16];
    let logits = network
        .forward(&input, &mut workspace)
        .expect("a well-shaped input");
    assert_eq!(logits.len(), 5);
});

const DTYPES: [&str; 9] = [
    "F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "F8_E4M3", "X",
];

/// The tensors a scheme expects for the architecture, each maybe given a wrong dtype or shape,
/// dropped or duplicated under another name; offsets consistent or arbitrary; data of the
/// declared length or not.
fn hostile_checkpoint(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let scheme = *u.choose(&Scheme::ALL)?;
    let mut entries = Vec::new();
    let mut offset = 0u64;
    for (key, shape) in expected_tensors(&ARCHITECTURE, scheme) {
        if u.ratio(1u8, 50u8)? {
            continue;
        }
        let key = if u.ratio(1u8, 50u8)? {
            format!("{key}.extra")
        } else {
            key
        };
        let dtype = if u.ratio(1u8, 20u8)? {
            *u.choose(&DTYPES)?
        } else {
            "F32"
        };
        let shape: Vec<u64> = if u.ratio(1u8, 20u8)? {
            let rank = u.int_in_range(0..=5usize)?;
            (0..rank)
                .map(|_| Ok(*u.choose(&[0, 1, 3, 1 << 31, 1 << 62, u64::MAX])?))
                .collect::<Result<_>>()?
        } else {
            shape.iter().map(|&d| d as u64).collect()
        };
        let elements = shape.iter().fold(1u64, |a, &d| a.saturating_mul(d));
        let length = elements.saturating_mul(4);
        let (start, end) = if u.ratio(1u8, 20u8)? {
            (u.arbitrary()?, u.arbitrary()?)
        } else {
            (offset, offset.saturating_add(length))
        };
        offset = end;
        entries.push(format!(
            "\"{key}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{start},{end}]}}"
        ));
    }
    if u.ratio(1u8, 10u8)? {
        entries.push("\"__metadata__\":{\"format\":\"pt\"}".into());
    }
    let header = format!("{{{}}}", entries.join(","));
    let data_length = if u.ratio(1u8, 10u8)? {
        u.int_in_range(0..=offset.min(1 << 20))?
    } else {
        offset.min(1 << 20)
    };
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    // Values from the input (NaN and denormals included), zeros when it runs out.
    let fill = u.bytes(u.len().min(data_length as usize))?.to_vec();
    bytes.extend_from_slice(&fill);
    bytes.resize(bytes.len() + (data_length as usize - fill.len()), 0);
    Ok(bytes)
}
